namespace BuddySystem.Cli.Bench;

/// <summary><see cref="LockedHeap"/>'s calls for <c>locked-heap</c>: a <see cref="BuddyHeap"/> behind a lock.</summary>
internal readonly unsafe struct LockedHeapCalls(LockedHeap heap) : IHotCalls
{
    public nuint Allocate(nuint size, nuint align) => (nuint)heap.Allocate(new Layout(size, align));

    public void Free(nuint block, nuint size, nuint align) => heap.Deallocate((void*)block, new Layout(size, align));
}
