namespace BuddySystem.Cli.Bench;

/// <summary>
/// A C allocator's entry points for <see cref="MallocAllocator{TApi}"/>. Static, on a struct, so each peer's adapter is
/// compiled on its own and calls its functions directly, as a C caller does.
/// </summary>
internal unsafe interface IMallocApi
{
    /// <summary>Why the allocator cannot be used here, or null.</summary>
    static abstract string? Unavailable { get; }

    /// <summary><c>malloc</c>: aligned to 16 bytes; null on failure.</summary>
    static abstract void* Malloc(nuint size);

    /// <summary>The aligned entry point, for alignments above 16 bytes; null on failure.</summary>
    static abstract void* AlignedAlloc(nuint size, nuint align);

    /// <summary>Frees a block of <see cref="Malloc"/> (<paramref name="aligned"/> false) or of <see cref="AlignedAlloc"/>.</summary>
    static abstract void Free(void* block, bool aligned);

    /// <summary><c>realloc</c> of a block of <see cref="Malloc"/>; <paramref name="newSize"/> is at least 1; null on failure
    /// (the block stays live).</summary>
    static abstract void* Realloc(void* block, nuint newSize);

    /// <summary>Resizes a block of <see cref="AlignedAlloc"/> of <paramref name="size"/> bytes, keeping its alignment; null
    /// on failure (the block stays live).</summary>
    static abstract void* AlignedRealloc(void* block, nuint size, nuint newSize, nuint align);

    /// <summary>The bytes the allocator set aside for a live block; 0 when it cannot tell.</summary>
    static abstract nuint UsableSize(void* block);
}
