using BuddySystem.Internals;

namespace BuddySystem.Cli.Bench;

/// <summary><c>buddy-heap-eager</c>: <see cref="BuddyHeap"/> with <see cref="BuddyHeapOptions.Eager"/> (the tutorial's algorithm, no lazy caches):
/// the baseline the lazy layer is measured against.</summary>
internal readonly unsafe struct BuddyHeapEagerAllocator : IBenchAllocator
{
    private readonly BuddyHeap _heap;
    private readonly NativeRegion _region;

    private BuddyHeapEagerAllocator(BuddyHeap heap, NativeRegion region)
    {
        _heap = heap;
        _region = region;
    }

    public static bool IsThreadSafe => false;

    public static bool IsArena => true;

    public nuint RegionStart => _region.Address;

    /// <summary>A heap over a fresh region of <paramref name="heapSize"/> bytes aligned to <paramref name="heapSize"/> (a power of two).</summary>
    public static BuddyHeapEagerAllocator Create(nuint heapSize)
    {
        var region = new NativeRegion(heapSize, heapSize, touchPages: true);
        var heap = new BuddyHeap(BuddyHeapOptions.Eager);
        heap.AddRegion(region.Pointer, region.Size);
        return new BuddyHeapEagerAllocator(heap, region);
    }

    public nuint Allocate(nuint size, nuint align) => (nuint)_heap.Allocate(new Layout(size, align));

    public void Free(nuint block, nuint size, nuint align) => _heap.Deallocate((void*)block, new Layout(size, align));

    public nuint Reallocate(nuint block, nuint size, nuint align, nuint newSize) =>
        (nuint)_heap.Reallocate((void*)block, new Layout(size, align), newSize);

    public nuint BlockSize(nuint block, nuint size, nuint align) => BuddyHeap.MinBlockSize << Orders.OrderFor(size, align, BuddyHeap.MinShift);

    public void Dispose()
    {
        _heap.Dispose();
        _region.Dispose();
    }
}
