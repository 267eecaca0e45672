namespace BuddySystem.Cli.Bench;

/// <summary>glibc's <c>malloc</c> family, loaded from <c>libc.so.6</c>: the <c>glibc</c> peer.</summary>
/// <remarks>
/// Called through <c>delegate* unmanaged[SuppressGCTransition]</c>, as docs/benchmarks.md asks, so the call costs about what a
/// C caller pays and the comparison with the managed heaps is fair.
/// </remarks>
internal readonly unsafe struct Libc : IMallocApi
{
    private static readonly delegate* unmanaged[SuppressGCTransition]<nuint, void*> s_malloc;
    private static readonly delegate* unmanaged[SuppressGCTransition]<void*, void> s_free;
    private static readonly delegate* unmanaged[SuppressGCTransition]<void*, nuint, void*> s_realloc;
    private static readonly delegate* unmanaged[SuppressGCTransition]<nuint, nuint, void*> s_alignedAlloc;
    private static readonly delegate* unmanaged[SuppressGCTransition]<void*, nuint> s_usableSize;
    private static readonly string? s_unavailable;

#pragma warning disable CA1810 // the fields are function pointers resolved together; a static constructor keeps that in one place
    static Libc()
#pragma warning restore CA1810
    {
        if (NativeExports.TryLoad("libc.so.6", "libc.so.6 could not be loaded (not glibc Linux?)", ["malloc", "free", "realloc", "aligned_alloc", "malloc_usable_size"], out nint[] f, out s_unavailable))
        {
            s_malloc = (delegate* unmanaged[SuppressGCTransition]<nuint, void*>)f[0];
            s_free = (delegate* unmanaged[SuppressGCTransition]<void*, void>)f[1];
            s_realloc = (delegate* unmanaged[SuppressGCTransition]<void*, nuint, void*>)f[2];
            s_alignedAlloc = (delegate* unmanaged[SuppressGCTransition]<nuint, nuint, void*>)f[3];
            s_usableSize = (delegate* unmanaged[SuppressGCTransition]<void*, nuint>)f[4];
        }
    }

    public static string? Unavailable => s_unavailable;

    public static void* Malloc(nuint size) => s_malloc(size);

    public static void* AlignedAlloc(nuint size, nuint align) => s_alignedAlloc(align, size);

    public static void Free(void* block, bool aligned) => s_free(block);

    public static void* Realloc(void* block, nuint newSize) => s_realloc(block, newSize);

    // glibc has no aligned realloc, and realloc does not keep an alignment above malloc's own: move by hand.
    public static void* AlignedRealloc(void* block, nuint size, nuint newSize, nuint align)
    {
        void* moved = s_alignedAlloc(align, newSize);
        if (moved != null)
        {
            Buffer.MemoryCopy(block, moved, newSize, Math.Min(size, newSize));
            s_free(block);
        }

        return moved;
    }

    public static nuint UsableSize(void* block) => s_usableSize(block);
}
