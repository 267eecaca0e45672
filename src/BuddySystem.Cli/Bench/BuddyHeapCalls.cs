namespace BuddySystem.Cli.Bench;

/// <summary><see cref="BuddyHeap"/>'s calls for <c>buddy-heap</c>, <c>buddy-heap-eager</c> and <c>buddy-heap-hardened</c>
/// (they differ only in the options the heap is built with).</summary>
internal readonly unsafe struct BuddyHeapCalls(BuddyHeap heap) : IHotCalls
{
    public nuint Allocate(nuint size, nuint align) => (nuint)heap.Allocate(new Layout(size, align));

    public void Free(nuint block, nuint size, nuint align) => heap.Deallocate((void*)block, new Layout(size, align));
}
