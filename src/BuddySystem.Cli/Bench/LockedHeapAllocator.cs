namespace BuddySystem.Cli.Bench;

/// <summary><c>locked-heap</c>: <see cref="LockedHeap"/> (a <see cref="BuddyHeap"/> behind a lock) over one region aligned to its size.</summary>
internal readonly unsafe struct LockedHeapAllocator : IBenchAllocator
{
    private readonly LockedHeap _heap;
    private readonly NativeRegion _region;

    private LockedHeapAllocator(LockedHeap heap, NativeRegion region)
    {
        _heap = heap;
        _region = region;
    }

    public static bool IsThreadSafe => true;

    public static bool IsArena => true;

    public nuint RegionStart => _region.Address;

    /// <summary>The heap's accounting (for tests and reports; takes the lock).</summary>
    public HeapStats Stats => _heap.Stats;

    /// <summary>A locked heap over a fresh region of <paramref name="heapSize"/> bytes aligned to <paramref name="heapSize"/>.</summary>
    public static LockedHeapAllocator Create(nuint heapSize)
    {
        var region = new NativeRegion(heapSize, heapSize, touchPages: true);
        var engine = new BuddyHeap();
        engine.AddRegion(region.Pointer, region.Size);
        return new LockedHeapAllocator(new LockedHeap(engine), region);
    }

    public nuint Allocate(nuint size, nuint align) => (nuint)_heap.Allocate(new Layout(size, align));

    public void Free(nuint block, nuint size, nuint align) => _heap.Deallocate((void*)block, new Layout(size, align));

    public nuint Reallocate(nuint block, nuint size, nuint align, nuint newSize) =>
        (nuint)_heap.Reallocate((void*)block, new Layout(size, align), newSize);

    public nuint BlockSize(nuint block, nuint size, nuint align) => BuddyHeap.BlockSizeOf(new Layout(size, align));

    public void Dispose()
    {
        _heap.Dispose();
        _region.Dispose();
    }
}
