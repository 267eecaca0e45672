using BuddySystem.Testing;

namespace BuddySystem.Cli.Bench;

/// <summary>The bench adapter of a registry engine (<see cref="EngineCatalog"/>) with no struct adapter of its own: its
/// <see cref="HeapTarget"/>'s allocator, called through <see cref="IAllocator"/>.</summary>
internal readonly unsafe struct TargetAllocator(HeapTarget target) : IBenchAllocator
{
    // The entry (BenchAllocatorEntry's threadSafe) reports the engine's own thread safety; the static answers are the
    // conservative ones.
    public static bool IsThreadSafe => false;

    public static bool IsArena => false;

    public nuint RegionStart => 0;

    public nuint Allocate(nuint size, nuint align) => (nuint)target.Allocator.Allocate(new Layout(size, align));

    public void Free(nuint block, nuint size, nuint align) => target.Allocator.Deallocate((void*)block, new Layout(size, align));

    public nuint Reallocate(nuint block, nuint size, nuint align, nuint newSize)
        => (nuint)target.Allocator.Reallocate((void*)block, new Layout(size, align), newSize);

    public nuint BlockSize(nuint block, nuint size, nuint align) => (nuint)target.BlockSize(new Layout(size, align));

    public void Dispose() => target.Dispose();
}
