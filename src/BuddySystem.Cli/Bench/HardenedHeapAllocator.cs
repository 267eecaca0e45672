using BuddySystem.Internals;

namespace BuddySystem.Cli.Bench;

/// <summary>
/// <c>buddy-heap-hardened</c>: <see cref="BuddyHeap"/> with every check of <see cref="HeapHardeningOptions"/> on (poison,
/// canary and footer; no stacks), to measure what hardened mode costs against <c>buddy-heap</c> in the same run.
/// </summary>
internal readonly unsafe struct HardenedHeapAllocator : IBenchAllocator
{
    private readonly BuddyHeap _heap;
    private readonly NativeRegion _region;

    private HardenedHeapAllocator(BuddyHeap heap, NativeRegion region)
    {
        _heap = heap;
        _region = region;
    }

    public static bool IsThreadSafe => false;

    public static bool IsArena => true;

    public nuint RegionStart => _region.Address;

    /// <summary>A hardened heap over a fresh region of <paramref name="heapSize"/> bytes aligned to its size, pages touched.</summary>
    public static HardenedHeapAllocator Create(nuint heapSize)
    {
        var region = new NativeRegion(heapSize, heapSize, touchPages: true);
        var heap = new BuddyHeap(BuddyHeapOptions.Default with { Hardening = HeapHardeningOptions.Default });
        heap.AddRegion(region.Pointer, region.Size);
        return new HardenedHeapAllocator(heap, region);
    }

    public nuint Allocate(nuint size, nuint align) => (nuint)_heap.Allocate(new Layout(size, align));

    public void Free(nuint block, nuint size, nuint align) => _heap.Deallocate((void*)block, new Layout(size, align));

    public nuint Reallocate(nuint block, nuint size, nuint align, nuint newSize) =>
        (nuint)_heap.Reallocate((void*)block, new Layout(size, align), newSize);

    public nuint BlockSize(nuint block, nuint size, nuint align)
        => BuddyHeap.MinBlockSize << Orders.OrderFor(size + BuddyHeap.HardeningOverhead, align, BuddyHeap.MinShift);

    public void Dispose()
    {
        _heap.Dispose();
        _region.Dispose();
    }
}
