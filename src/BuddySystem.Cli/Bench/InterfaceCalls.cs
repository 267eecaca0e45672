namespace BuddySystem.Cli.Bench;

/// <summary>The hot calls of an engine known only by its <see cref="Testing.HeapTarget"/>: through <see cref="IAllocator"/>,
/// on the heap the target owns (not a region of the bench's own, so not an arena).</summary>
internal readonly unsafe struct InterfaceCalls(IAllocator engine) : IHotCalls
{
    public static bool IsArena => false;

    public nuint Allocate(nuint size, nuint align) => (nuint)engine.Allocate(new Layout(size, align));

    public void Free(nuint block, nuint size, nuint align) => engine.Deallocate((void*)block, new Layout(size, align));
}
