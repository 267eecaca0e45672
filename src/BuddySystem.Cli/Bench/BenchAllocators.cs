using BuddySystem.Cli.Engines;

namespace BuddySystem.Cli.Bench;

/// <summary>The allocators <c>buddy bench</c> and <c>buddy replay</c> measure: the engines of <see cref="EngineCatalog.All"/> that have a bench side.</summary>
internal static class BenchAllocators
{
    /// <summary>Every measured allocator, in table order (the peers last).</summary>
    public static IReadOnlyList<BenchAllocatorEntry> All => EngineCatalog.Measured;

    /// <summary>The allocators <c>buddy replay</c> can run a trace on (not the buffer pools).</summary>
    public static IReadOnlyList<BenchAllocatorEntry> Replayable { get; } = [.. All.Where(a => a.Replays)];

    /// <summary>The allocator with <paramref name="id"/>, or null.</summary>
    public static BenchAllocatorEntry? Find(string id) => EngineCatalog.Find(id)?.Bench;
}
