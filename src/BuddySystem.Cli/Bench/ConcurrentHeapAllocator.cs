using BuddySystem.Testing;

namespace BuddySystem.Cli.Bench;

/// <summary><c>concurrent-heap</c> and <c>concurrent-heap-buddy</c>: <see cref="ConcurrentHeap"/> (with or without its size-class tier) over one region aligned to its size.</summary>
internal readonly unsafe struct ConcurrentHeapAllocator : IBenchAllocator
{
    private readonly ConcurrentHeap _heap;
    private readonly NativeRegion _region;

    private ConcurrentHeapAllocator(ConcurrentHeap heap, NativeRegion region)
    {
        _heap = heap;
        _region = region;
    }

    public static bool IsThreadSafe => true;

    public static bool IsArena => true;

    public nuint RegionStart => _region.Address;

    /// <summary>The heap's accounting (for tests and reports; exact when other threads are quiet).</summary>
    public HeapStats Stats => _heap.Stats;

    /// <summary>A concurrent heap over a fresh region of <paramref name="heapSize"/> bytes aligned to <paramref name="heapSize"/>.</summary>
    public static ConcurrentHeapAllocator Create(nuint heapSize) => Create(heapSize, BuddyHeapOptions.ConcurrentDefault);

    /// <summary>The heap without its size-class tier: per-thread buddy caches only (libbuddymalloc's configuration): <c>concurrent-heap-buddy</c>.</summary>
    public static ConcurrentHeapAllocator CreateBuddyOnly(nuint heapSize) => Create(heapSize, EngineCatalog.ConcurrentBuddyOnly);

    private static ConcurrentHeapAllocator Create(nuint heapSize, BuddyHeapOptions options)
    {
        var region = new NativeRegion(heapSize, heapSize, touchPages: true);
        var heap = new ConcurrentHeap(options);
        heap.AddRegion(region.Pointer, region.Size);
        return new ConcurrentHeapAllocator(heap, region);
    }

    public nuint Allocate(nuint size, nuint align) => (nuint)_heap.Allocate(new Layout(size, align));

    public void Free(nuint block, nuint size, nuint align) => _heap.Deallocate((void*)block, new Layout(size, align));

    public nuint Reallocate(nuint block, nuint size, nuint align, nuint newSize) =>
        (nuint)_heap.Reallocate((void*)block, new Layout(size, align), newSize);

    public nuint BlockSize(nuint block, nuint size, nuint align) => (nuint)_heap.BlockSizeFor(new Layout(size, align));

    public void Dispose()
    {
        _heap.Dispose();
        _region.Dispose();
    }
}
