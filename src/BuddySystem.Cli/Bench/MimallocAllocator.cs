namespace BuddySystem.Cli.Bench;

/// <summary><c>mimalloc</c>: <c>mi_malloc</c>/<c>mi_free</c>, the fast general-purpose peer.</summary>
internal readonly unsafe struct MimallocAllocator : IBenchAllocator
{
    // mimalloc's mi_malloc aligns to 16 bytes (MI_MAX_ALIGN_SIZE); larger alignments use the _aligned entry points.
    private const nuint MallocAlign = 16;

    public static bool IsThreadSafe => true;

    public static bool IsArena => false;

    public nuint RegionStart => 0;

    public static MimallocAllocator Create(nuint heapSize) => default;

    public nuint Allocate(nuint size, nuint align) =>
        (nuint)(align <= MallocAlign ? Mimalloc.Malloc(size) : Mimalloc.MallocAligned(size, align));

    public void Free(nuint block, nuint size, nuint align) => Mimalloc.Free((void*)block);

    public nuint Reallocate(nuint block, nuint size, nuint align, nuint newSize) =>
        (nuint)(align <= MallocAlign ? Mimalloc.Realloc((void*)block, newSize) : Mimalloc.ReallocAligned((void*)block, newSize, align));

    public nuint BlockSize(nuint block, nuint size, nuint align) => Mimalloc.UsableSize((void*)block);

    public void Dispose()
    {
    }
}
