namespace BuddySystem.Cli.Bench;

/// <summary><c>glibc</c>: libc <c>malloc</c>/<c>free</c>, the peer every C program gets.</summary>
internal readonly unsafe struct GlibcAllocator : IBenchAllocator
{
    // glibc's malloc aligns to 16 bytes; larger alignments go through aligned_alloc.
    private const nuint MallocAlign = 16;

    public static bool IsThreadSafe => true;

    public static bool IsArena => false;

    public nuint RegionStart => 0;

    public static GlibcAllocator Create(nuint heapSize) => default;

    public nuint Allocate(nuint size, nuint align) =>
        (nuint)(align <= MallocAlign ? Libc.Malloc(size) : Libc.AlignedAlloc(align, size));

    public void Free(nuint block, nuint size, nuint align) => Libc.Free((void*)block);

    public nuint Reallocate(nuint block, nuint size, nuint align, nuint newSize)
    {
        if (align <= MallocAlign)
        {
            // realloc(p, 0) frees p and returns null in glibc, which would read as a failure with p still live.
            return (nuint)Libc.Realloc((void*)block, Math.Max(newSize, 1));
        }

        // realloc does not keep an alignment above malloc's own: move by hand.
        nuint moved = Allocate(newSize, align);
        if (moved != 0)
        {
            Buffer.MemoryCopy((void*)block, (void*)moved, newSize, Math.Min(size, newSize));
            Libc.Free((void*)block);
        }

        return moved;
    }

    public nuint BlockSize(nuint block, nuint size, nuint align) => Libc.UsableSize((void*)block);

    public void Dispose()
    {
    }
}
