namespace BuddySystem.Cli.Bench;

/// <summary>
/// The bench adapter of a project engine: its <see cref="HeapTarget"/> (the reliability kit's view of it) answers every
/// call but the two the timed loops make most, which <typeparamref name="THot"/> makes directly on the engine's class.
/// Made by <see cref="TargetAllocator.OverRegion"/> (the engine over a region of the bench's own) or
/// <see cref="TargetAllocator.Of"/> (any registry engine, every call through <see cref="IAllocator"/>).
/// </summary>
/// <typeparam name="THot">The engine's allocate and free; a struct, so this adapter is compiled once per engine.</typeparam>
internal readonly unsafe struct TargetAllocator<THot>(HeapTarget target, THot hot, NativeRegion? region) : IBenchAllocator
    where THot : struct, IHotCalls
{
    // BenchAllocators reports the engine's own thread safety from the registry; the static answer is the conservative one.
    public static bool IsThreadSafe => false;

    public static bool IsArena => THot.IsArena;

    public nuint RegionStart => region?.Address ?? 0;

    /// <summary>The engine's accounting (for tests and reports).</summary>
    public HeapStats Stats => target.Stats;

    public nuint Allocate(nuint size, nuint align) => hot.Allocate(size, align);

    public void Free(nuint block, nuint size, nuint align) => hot.Free(block, size, align);

    // Not hot: a reallocation copies the block, which dwarfs the interface call.
    public nuint Reallocate(nuint block, nuint size, nuint align, nuint newSize)
        => (nuint)target.Allocator.Reallocate((void*)block, new Layout(size, align), newSize);

    public nuint BlockSize(nuint block, nuint size, nuint align) => (nuint)target.BlockSize(new Layout(size, align));

    public void Dispose()
    {
        target.Dispose();
        region?.Dispose();
    }
}
