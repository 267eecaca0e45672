namespace BuddySystem.Cli.Bench;

/// <summary>
/// What <c>buddy bench</c> and <c>buddy replay</c> need from an allocator: a struct adapter, mapped to its registry
/// engine (<see cref="Testing.EngineCatalog.All"/>) in <see cref="BenchAllocators"/>.
/// </summary>
/// <remarks>
/// The hot loops are generic methods constrained to <c>where T : struct, IBenchAllocator</c>, so the JIT compiles one copy
/// per adapter and calls these members directly (devirtualised, inlinable): every allocator pays the same call cost.
/// Blocks are integer addresses (for an offset allocator: region start + offset) so every allocator's blocks can be
/// filled and checked by the replayer.
/// </remarks>
internal interface IBenchAllocator : IDisposable
{
    /// <summary>Safe to call from several threads at once (W5 runs only these).</summary>
    static abstract bool IsThreadSafe { get; }

    /// <summary>Serves blocks from one region it was given (W6 and the replay footprint apply only to these).</summary>
    static abstract bool IsArena { get; }

    /// <summary>The first byte of the arena's region; 0 for an allocator that is not an arena.</summary>
    nuint RegionStart { get; }

    /// <summary>Allocates <paramref name="size"/> bytes aligned to <paramref name="align"/> (a power of two); 0 on failure.</summary>
    nuint Allocate(nuint size, nuint align);

    /// <summary>Frees a block returned by <see cref="Allocate"/> or <see cref="Reallocate"/> with the same size and alignment.</summary>
    void Free(nuint block, nuint size, nuint align);

    /// <summary>Resizes a live block to <paramref name="newSize"/>, keeping its first bytes; 0 on failure (the old block stays live).</summary>
    nuint Reallocate(nuint block, nuint size, nuint align, nuint newSize);

    /// <summary>The bytes the allocator set aside for this live block (its block size); 0 when the allocator cannot tell.</summary>
    nuint BlockSize(nuint block, nuint size, nuint align);
}
