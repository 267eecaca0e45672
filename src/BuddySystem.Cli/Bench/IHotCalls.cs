namespace BuddySystem.Cli.Bench;

/// <summary>
/// The two calls the timed loops make most, made directly on one engine's class: <see cref="TargetAllocator{THot}"/>
/// is compiled once per implementation, so they are devirtualised and inlinable (docs/benchmarks.md, "One bench
/// adapter?": through the interface, W1 takes about twice as long). The engine's other calls go through its
/// <see cref="Testing.HeapTarget"/>.
/// </summary>
internal interface IHotCalls
{
    /// <summary>Whether the adapter serves a region it gave the engine (W6 and the replay footprint apply only to these).</summary>
    static virtual bool IsArena => true;

    /// <summary>Allocates <paramref name="size"/> bytes aligned to <paramref name="align"/>; 0 on failure.</summary>
    nuint Allocate(nuint size, nuint align);

    /// <summary>Frees a block allocated with the same size and alignment.</summary>
    void Free(nuint block, nuint size, nuint align);
}
