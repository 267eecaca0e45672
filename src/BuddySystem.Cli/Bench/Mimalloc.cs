namespace BuddySystem.Cli.Bench;

/// <summary>mimalloc's <c>mi_malloc</c> family from <c>libmimalloc.so.2</c> (Debian package <c>libmimalloc2.0</c>): the
/// <c>mimalloc</c> peer.</summary>
/// <remarks>Optional: when the library is missing <see cref="Unavailable"/> says so and the bench goes on without it.</remarks>
internal readonly unsafe struct Mimalloc : IMallocApi
{
    /// <summary>The file loaded.</summary>
    public const string LibraryName = "libmimalloc.so.2";

    private static readonly delegate* unmanaged[SuppressGCTransition]<nuint, void*> s_malloc;
    private static readonly delegate* unmanaged[SuppressGCTransition]<void*, void> s_free;
    private static readonly delegate* unmanaged[SuppressGCTransition]<void*, nuint, void*> s_realloc;
    private static readonly delegate* unmanaged[SuppressGCTransition]<nuint, nuint, void*> s_mallocAligned;
    private static readonly delegate* unmanaged[SuppressGCTransition]<void*, nuint, nuint, void*> s_reallocAligned;
    private static readonly delegate* unmanaged[SuppressGCTransition]<void*, nuint> s_usableSize;
    private static readonly string? s_unavailable;

#pragma warning disable CA1810 // the fields are function pointers resolved together; a static constructor keeps that in one place
    static Mimalloc()
#pragma warning restore CA1810
    {
        string[] names = ["mi_malloc", "mi_free", "mi_realloc", "mi_malloc_aligned", "mi_realloc_aligned", "mi_usable_size"];
        if (NativeExports.TryLoad(LibraryName, $"{LibraryName} not found (install it: apt-get install libmimalloc2.0)", names, out nint[] f, out s_unavailable))
        {
            s_malloc = (delegate* unmanaged[SuppressGCTransition]<nuint, void*>)f[0];
            s_free = (delegate* unmanaged[SuppressGCTransition]<void*, void>)f[1];
            s_realloc = (delegate* unmanaged[SuppressGCTransition]<void*, nuint, void*>)f[2];
            s_mallocAligned = (delegate* unmanaged[SuppressGCTransition]<nuint, nuint, void*>)f[3];
            s_reallocAligned = (delegate* unmanaged[SuppressGCTransition]<void*, nuint, nuint, void*>)f[4];
            s_usableSize = (delegate* unmanaged[SuppressGCTransition]<void*, nuint>)f[5];
        }
    }

    public static string? Unavailable => s_unavailable;

    public static void* Malloc(nuint size) => s_malloc(size);

    public static void* AlignedAlloc(nuint size, nuint align) => s_mallocAligned(size, align);

    public static void Free(void* block, bool aligned) => s_free(block);

    public static void* Realloc(void* block, nuint newSize) => s_realloc(block, newSize);

    public static void* AlignedRealloc(void* block, nuint size, nuint newSize, nuint align) => s_reallocAligned(block, newSize, align);

    public static nuint UsableSize(void* block) => s_usableSize(block);
}
