namespace BuddySystem.Cli.Bench;

/// <summary>How many operations each workload runs: the full counts of docs/benchmarks.md, or the quick ones for CI.</summary>
/// <param name="W1Pairs">W1 allocate/free pairs.</param>
/// <param name="W2Repetitions">W2 repetitions of (allocate 8 MiB / s blocks, free them).</param>
/// <param name="W3Ops">W3 operations.</param>
/// <param name="W5OpsPerThread">W5 operations per thread.</param>
/// <param name="W6Rounds">W6 rounds.</param>
/// <param name="PoolOpsPerThread">pool: rents (each with a return) per renting thread.</param>
/// <param name="WarmUp">How long each (case, allocator) repeats its untimed warm-up runs before the clock starts (at least
/// one run): long enough for the runtime to recompile the methods it saw called at full optimisation (tiered compilation
/// waits 100 ms after the last new method before it promotes any, then compiles in the background).</param>
internal sealed record BenchScale(long W1Pairs, int W2Repetitions, int W3Ops, int W5OpsPerThread, int W6Rounds, int PoolOpsPerThread = 100_000, TimeSpan WarmUp = default)
{
    /// <summary>docs/benchmarks.md ("How buddy bench measures") to the letter.</summary>
    public static BenchScale Full { get; } = new(10_000_000, 20, W3Ops: 2_000_000, W5OpsPerThread: 2_000_000, W6Rounds: 300, PoolOpsPerThread: 2_000_000, WarmUp: TimeSpan.FromMilliseconds(400));

    /// <summary>The same shapes (sizes, n, seeds, live cap) with a tenth of the operations or fewer (W5, W6 and the pool a
    /// fortieth, W2 one repetition) and one warm-up run: under 15 s for every workload and engine, for a first look and for
    /// CI (not for figures: rarely called methods may still run unoptimised).</summary>
    public static BenchScale Quick { get; } = new(1_000_000, 1, W3Ops: 200_000, W5OpsPerThread: 50_000, W6Rounds: 10, PoolOpsPerThread: 50_000);
}
