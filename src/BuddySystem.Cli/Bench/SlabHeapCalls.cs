namespace BuddySystem.Cli.Bench;

/// <summary><see cref="SlabHeap"/>'s calls for <c>slab-heap</c>: size-class slabs on buddy blocks, no lock.</summary>
internal readonly unsafe struct SlabHeapCalls(SlabHeap heap) : IHotCalls
{
    public nuint Allocate(nuint size, nuint align) => (nuint)heap.Allocate(new Layout(size, align));

    public void Free(nuint block, nuint size, nuint align) => heap.Deallocate((void*)block, new Layout(size, align));
}
