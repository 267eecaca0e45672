using BuddySystem.Internals;

namespace BuddySystem.Cli.Bench;

/// <summary><c>buddy-heap</c>: <see cref="BuddyHeap"/> with no lock, over one region aligned to its size, pages touched.</summary>
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

    /// <summary>A heap over a fresh region of <paramref name="heapSize"/> bytes aligned to <paramref name="heapSize"/> (a power of two).</summary>
    public static BuddyHeapAllocator Create(nuint heapSize)
    {
        var region = new NativeRegion(heapSize, heapSize, touchPages: true);
        var heap = new BuddyHeap();
        heap.AddRegion(region.Pointer, region.Size);
        return new BuddyHeapAllocator(heap, region);
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
