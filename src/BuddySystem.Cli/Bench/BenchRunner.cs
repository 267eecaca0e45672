namespace BuddySystem.Cli.Bench;

/// <summary>Runs the chosen workloads on the chosen allocators under a live progress display and collects medians.</summary>
/// <remarks>
/// Runs are interleaved (run 1 of every allocator, then run 2, ...) so a burst of noise on this shared machine spreads
/// over all allocators instead of landing on one. Each (case, allocator) first repeats untimed warm-up runs for
/// <see cref="BenchScale.WarmUp"/>, so tiered compilation has promoted the loops and the allocator's methods, the rarely
/// called ones included (a slab's refill, a large block's split), to full optimisation before the clock starts.
/// </remarks>
internal static class BenchRunner
{
    /// <summary>The warm-up scale: the same shapes, few operations.</summary>
    private static readonly BenchScale s_warmUp = new(100_000, 1, W3Ops: 50_000, W5OpsPerThread: 50_000, W6Rounds: 2);

    /// <summary>Measures everything in <paramref name="options"/>; returns one row per case and allocator that ran.</summary>
    public static List<BenchResult> Run(BenchOptions options, IAnsiConsole console)
    {
        var results = new List<BenchResult>();
        var available = options.Allocators.Where(a => a.Unavailable is null).ToList();
        CommandProgress.Start(console, context =>
            {
                var tasks = new Dictionary<string, ProgressTask>();
                foreach (string workload in options.Workloads)
                {
                    int runs = RunsFor(workload, options.Runs);
                    int steps = WorkloadCase.For(workload).Count() * available.Where(a => a.Runs(workload)).Sum(a => runs + (a.NeedsWarmUp ? 1 : 0));
                    tasks[workload] = context.AddTask(workload, autoStart: false, maxValue: Math.Max(steps, 1));
                }

                foreach (string workload in options.Workloads)
                {
                    ProgressTask task = tasks[workload];
                    task.StartTask();
                    results.AddRange(RunWorkload(workload, available.Where(a => a.Runs(workload)).ToList(), options, task));
                    task.Value = task.MaxValue;
                    task.Description = workload;
                    task.StopTask();
                }
            }, keep: true);
        return results;
    }

    // W6 measures efficiency, which is deterministic: one run of its 300 rounds is the figure.
    private static int RunsFor(string workload, int runs) => workload == "W6" ? 1 : runs;

    private static IEnumerable<BenchResult> RunWorkload(string workload, List<BenchAllocatorEntry> allocators, BenchOptions options, ProgressTask task)
    {
        int runs = RunsFor(workload, options.Runs);
        foreach (WorkloadCase workloadCase in WorkloadCase.For(workload))
        {
            var measured = allocators.ToDictionary(a => a.Id, _ => new List<Measurement>());
            foreach (BenchAllocatorEntry allocator in allocators.Where(a => a.NeedsWarmUp))
            {
                task.Description = $"{workloadCase.Label} · {allocator.Id} · warm-up";
                long warmUpStart = Stopwatch.GetTimestamp();
                do
                {
                    allocator.Measure(workloadCase, s_warmUp, BenchWorkloads.HeapSizeFor(workloadCase));
                }
                while (Stopwatch.GetElapsedTime(warmUpStart) < options.Scale.WarmUp);

                task.Increment(1);
            }

            for (int run = 0; run < runs; run++)
            {
                foreach (BenchAllocatorEntry allocator in allocators)
                {
                    task.Description = $"{workloadCase.Label} · {allocator.Id} · run {run + 1}/{runs}";
                    measured[allocator.Id].Add(allocator.Measure(workloadCase, options.Scale, BenchWorkloads.HeapSizeFor(workloadCase)));
                    task.Increment(1);
                }
            }

            foreach (BenchAllocatorEntry allocator in allocators)
            {
                List<Measurement> all = measured[allocator.Id];
                Measurement median = all.OrderBy(m => m.NsPerOp).ElementAt(all.Count / 2);
                yield return new BenchResult(
                    workloadCase.Workload,
                    workloadCase.Param,
                    allocator.Id,
                    median.NsPerOp,
                    median.Ops,
                    median.Failed,
                    workload is "W5" or "pool" ? 1e9 / median.NsPerOp : null,
                    workload == "W6" ? median.Efficiency : null,
                    GcBytesPerOp: median.GcBytes is { } gc && median.Ops > 0 ? (double)gc / median.Ops : null,
                    PeakRssBytes: median.PeakRssBytes);
            }
        }
    }
}
