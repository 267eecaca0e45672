using BuddySystem.Cli.Replay;

namespace BuddySystem.Cli.Bench;

/// <summary>An allocator that <c>buddy bench</c> and <c>buddy replay</c> can run, under a stable id.</summary>
internal abstract class BenchAllocatorEntry(string id, string description)
{
    /// <summary>The stable id used by <c>-a/--allocator</c>, tables and JSON (e.g. <c>buddy-heap</c>).</summary>
    public string Id { get; } = id;

    /// <summary>One line for <c>--help</c> and docs.</summary>
    public string Description { get; } = description;

    /// <summary>Safe from several threads at once (runs W5).</summary>
    public abstract bool IsThreadSafe { get; }

    /// <summary>Serves one region (runs W6; replay reports its footprint).</summary>
    public abstract bool IsArena { get; }

    /// <summary>Why it cannot run on this machine, or null.</summary>
    public abstract string? Unavailable { get; }

    /// <summary>Whether <c>buddy replay</c> can run a trace on it (a buffer pool cannot).</summary>
    public virtual bool Replays => true;

    /// <summary>Whether the bench gives each case an untimed warm-up run first (a pool's runs warm themselves up).</summary>
    public virtual bool NeedsWarmUp => true;

    /// <summary>Whether this allocator takes part in <paramref name="workload"/>: W5 needs thread safety, W6 an arena; the
    /// <c>pool</c> workload is for buffer pools only.</summary>
    public virtual bool Runs(string workload) => workload switch
    {
        "W5" => IsThreadSafe,
        "W6" => IsArena,
        "pool" => false,
        _ => true,
    };

    /// <summary>One run of <paramref name="workload"/> on a fresh instance over a heap of <paramref name="heapSize"/> bytes.</summary>
    public abstract Measurement Measure(WorkloadCase workload, BenchScale scale, nuint heapSize);

    /// <summary>One pass of a compiled trace on a fresh instance (see <see cref="TraceReplayer"/>).</summary>
    public abstract ReplayPass Replay(CompiledTrace trace, nuint heapSize, bool verify, Action<long>? progress);
}
