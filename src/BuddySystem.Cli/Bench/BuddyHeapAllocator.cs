namespace BuddySystem.Cli.Bench;

/// <summary>
/// A <see cref="BuddyHeap"/> with no lock, over one region aligned to its size, pages touched. One adapter serves
/// <c>buddy-heap</c> (default options: lazy caches), <c>buddy-heap-eager</c> (<see cref="BuddyHeapOptions.Eager"/>, the
/// tutorial's algorithm) and <c>buddy-heap-hardened</c> (every check of <see cref="HeapHardeningOptions"/>): they differ
/// only in the options the heap is built with.
/// </summary>
internal readonly unsafe struct BuddyHeapAllocator : IBenchAllocator
{
    private readonly BuddyHeap _heap;
    private readonly NativeRegion _region;

    private BuddyHeapAllocator(BuddyHeap heap, NativeRegion region)
    {
        _heap = heap;
        _region = region;
    }

    public static bool IsThreadSafe => false;

    public static bool IsArena => true;

    public nuint RegionStart => _region.Address;

    /// <summary>A heap with the default options (lazy caches): <c>buddy-heap</c>.</summary>
    public static BuddyHeapAllocator Create(nuint heapSize) => Create(heapSize, BuddyHeapOptions.Default);

    /// <summary>The eager heap, the baseline the lazy layer is measured against: <c>buddy-heap-eager</c>.</summary>
    public static BuddyHeapAllocator CreateEager(nuint heapSize) => Create(heapSize, BuddyHeapOptions.Eager);

    /// <summary>The hardened heap (poison, canary and footer; no stacks), to measure what hardening costs: <c>buddy-heap-hardened</c>.</summary>
    public static BuddyHeapAllocator CreateHardened(nuint heapSize)
        => Create(heapSize, BuddyHeapOptions.Default with { Hardening = HeapHardeningOptions.Default });

    /// <summary>A heap with <paramref name="options"/> over a fresh region of <paramref name="heapSize"/> bytes aligned to <paramref name="heapSize"/> (a power of two).</summary>
    private static BuddyHeapAllocator Create(nuint heapSize, BuddyHeapOptions options)
    {
        var region = new NativeRegion(heapSize, heapSize, touchPages: true);
        var heap = new BuddyHeap(options);
        heap.AddRegion(region.Pointer, region.Size);
        return new BuddyHeapAllocator(heap, region);
    }

    public nuint Allocate(nuint size, nuint align) => (nuint)_heap.Allocate(new Layout(size, align));

    public void Free(nuint block, nuint size, nuint align) => _heap.Deallocate((void*)block, new Layout(size, align));

    public nuint Reallocate(nuint block, nuint size, nuint align, nuint newSize) =>
        (nuint)_heap.Reallocate((void*)block, new Layout(size, align), newSize);

    public nuint BlockSize(nuint block, nuint size, nuint align)
        => _heap.BlockSizeFor(new Layout(size, align));

    public void Dispose()
    {
        _heap.Dispose();
        _region.Dispose();
    }
}
