namespace BuddySystem.Cli.Bench;

/// <summary>
/// The bench adapter of a peer C allocator (<c>glibc</c>, <c>mimalloc</c>, <c>native-memory</c>): no region of its own,
/// safe from any thread, small alignments through <c>malloc</c> and larger ones through the aligned entry points.
/// </summary>
/// <typeparam name="TApi">The allocator's functions.</typeparam>
internal readonly unsafe struct MallocAllocator<TApi> : IBenchAllocator
    where TApi : struct, IMallocApi
{
    // Every peer's malloc aligns to 16 bytes (glibc's; mimalloc's MI_MAX_ALIGN_SIZE; NativeMemory.Alloc promises malloc's).
    private const nuint MallocAlign = 16;

    public static bool IsThreadSafe => true;

    public static bool IsArena => false;

    public nuint RegionStart => 0;

    /// <summary>The adapter; a peer takes no heap size (its heap is the process's).</summary>
    public static MallocAllocator<TApi> Create(nuint heapSize) => default;

    public nuint Allocate(nuint size, nuint align) => (nuint)(align <= MallocAlign ? TApi.Malloc(size) : TApi.AlignedAlloc(size, align));

    public void Free(nuint block, nuint size, nuint align) => TApi.Free((void*)block, aligned: align > MallocAlign);

    // realloc(p, 0) may free p and return null, which would read as a failure with p still live: ask for one byte.
    public nuint Reallocate(nuint block, nuint size, nuint align, nuint newSize) => align <= MallocAlign
        ? (nuint)TApi.Realloc((void*)block, Math.Max(newSize, 1))
        : (nuint)TApi.AlignedRealloc((void*)block, size, Math.Max(newSize, 1), align);

    public nuint BlockSize(nuint block, nuint size, nuint align) => TApi.UsableSize((void*)block);

    public void Dispose()
    {
    }
}
