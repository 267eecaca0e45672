namespace BuddySystem.Cli.Bench;

/// <summary><see cref="ConcurrentHeap"/>'s calls for <c>concurrent-heap</c> and <c>concurrent-heap-buddy</c> (with and
/// without its size-class tier).</summary>
internal readonly unsafe struct ConcurrentHeapCalls(ConcurrentHeap heap) : IHotCalls
{
    public nuint Allocate(nuint size, nuint align) => (nuint)heap.Allocate(new Layout(size, align));

    public void Free(nuint block, nuint size, nuint align) => heap.Deallocate((void*)block, new Layout(size, align));
}
