namespace BuddySystem.Cli.Bench;

/// <summary><c>concurrent-slab-heap</c>: a <see cref="ConcurrentSlabHeap"/> (per-thread slabs on buddy blocks) over one region aligned to its size, pages touched.</summary>
internal readonly unsafe struct ConcurrentSlabHeapAllocator : IBenchAllocator
{
    private readonly ConcurrentSlabHeap _heap;
    private readonly NativeRegion _region;

    private ConcurrentSlabHeapAllocator(ConcurrentSlabHeap heap, NativeRegion region)
    {
        _heap = heap;
        _region = region;
    }

    public static bool IsThreadSafe => true;

    public static bool IsArena => true;

    public nuint RegionStart => _region.Address;

    /// <summary>A slab heap over a fresh region of <paramref name="heapSize"/> bytes aligned to <paramref name="heapSize"/> (a power of two).</summary>
    public static ConcurrentSlabHeapAllocator Create(nuint heapSize)
    {
        var region = new NativeRegion(heapSize, heapSize, touchPages: true);
        var heap = new ConcurrentSlabHeap();
        heap.AddRegion(region.Pointer, region.Size);
        return new ConcurrentSlabHeapAllocator(heap, region);
    }

    public nuint Allocate(nuint size, nuint align) => (nuint)_heap.Allocate(new Layout(size, align));

    public void Free(nuint block, nuint size, nuint align) => _heap.Deallocate((void*)block, new Layout(size, align));

    public nuint Reallocate(nuint block, nuint size, nuint align, nuint newSize) =>
        (nuint)_heap.Reallocate((void*)block, new Layout(size, align), newSize);

    public nuint BlockSize(nuint block, nuint size, nuint align) => (nuint)SlabHeap.BlockSizeFor(new Layout(size, align));

    public void Dispose()
    {
        _heap.Dispose();
        _region.Dispose();
    }
}
