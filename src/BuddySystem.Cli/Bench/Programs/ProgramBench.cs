namespace BuddySystem.Cli.Bench.Programs;

/// <summary>
/// Workload P (docs/benchmarks.md): each program on each malloc (glibc and the peers, and libbuddymalloc.so in both modes, through
/// <c>LD_PRELOAD</c>), wall time, CPU time and peak RSS, each the median of the runs, every run's output compared with glibc's.
/// </summary>
/// <remarks>As in <see cref="BenchRunner"/>, runs are interleaved (run 1 on every allocator, then run 2, ...) so a burst of
/// noise spreads over all of them, and with more than one run an untimed first round warms the page cache.</remarks>
internal static class ProgramBench
{
    /// <summary>The workload's name in results, tables and JSON.</summary>
    public const string Workload = "P";

    /// <summary>Runs <paramref name="programs"/> on <paramref name="allocators"/> (the available ones) in <paramref name="folder"/>.</summary>
    public static List<BenchResult> Run(IReadOnlyList<BenchProgram> programs, IReadOnlyList<ProgramAllocator> allocators, int runs, string folder, IAnsiConsole console)
    {
        var results = new List<BenchResult>();
        var ready = programs.Where(p => p.Unavailable is null).ToList();
        var peers = allocators.Where(a => a.Unavailable is null).ToList();
        int warmUp = runs > 1 ? 1 : 0;
        Dictionary<string, string> environment = ProgramSet.CurrentEnvironment();
        string launcher = ProgramSet.CompileLauncher(folder);
        CommandProgress.Start(console, context =>
            {
                var tasks = ready.ToDictionary(p => p.Name, p => context.AddTask(p.Name, autoStart: false, maxValue: Math.Max(peers.Count * (runs + warmUp), 1)));
                foreach (BenchProgram program in ready)
                {
                    ProgressTask task = tasks[program.Name];
                    task.StartTask();
                    results.AddRange(RunProgram(program, peers, runs, warmUp, launcher, environment, folder, task));
                    task.Description = program.Name;
                    task.StopTask();
                }
            }, keep: true);
        return results;
    }

    private static IEnumerable<BenchResult> RunProgram(BenchProgram program, List<ProgramAllocator> allocators, int runs, int warmUp,
        string launcher, Dictionary<string, string> baseEnvironment, string folder, ProgressTask task)
    {
        var measured = allocators.ToDictionary(a => a.Id, _ => new List<ProgramSpawn.Outcome>());
        var same = allocators.ToDictionary(a => a.Id, _ => true);
        byte[]? reference = null;
        string output = Path.Combine(folder, $"{program.Name}.out");
        string error = Path.Combine(folder, $"{program.Name}.err");
        for (int run = 0; run < warmUp + runs; run++)
        {
            foreach (ProgramAllocator allocator in allocators)
            {
                task.Description = run < warmUp ? $"{program.Name} · {allocator.Id} · warm-up" : $"{program.Name} · {allocator.Id} · run {run - warmUp + 1}/{runs}";
                var environment = new Dictionary<string, string>(baseEnvironment, StringComparer.Ordinal);
                foreach (var (name, value) in program.Environment)
                {
                    environment[name] = value;
                }

                foreach (var (name, value) in allocator.Environment)
                {
                    environment[name] = value;
                }

                ProgramSpawn.Outcome outcome = ProgramSpawn.Run(launcher, allocator.Preload, program.Argv, environment, folder, output, error);
                byte[] bytes = File.ReadAllBytes(output);
                // The first run is on glibc when it takes part (it is first in table order): its output is the reference.
                reference ??= bytes;
                if (outcome.ExitCode != 0 || !bytes.AsSpan().SequenceEqual(reference))
                {
                    same[allocator.Id] = false;
                }

                if (run >= warmUp)
                {
                    measured[allocator.Id].Add(outcome);
                }

                task.Increment(1);
            }
        }

        foreach (ProgramAllocator allocator in allocators)
        {
            List<ProgramSpawn.Outcome> all = measured[allocator.Id];
            long ns = all.Select(o => o.WallNs).Order().ElementAt(all.Count / 2);
            yield return new BenchResult(Workload, program.Name, allocator.Id, ns, 1, all.Count(o => o.ExitCode != 0),
                MaxRssBytes: all.Select(o => o.MaxRssBytes).Order().ElementAt(all.Count / 2), SameOutput: same[allocator.Id],
                CpuNs: all.Select(o => o.CpuNs).Order().ElementAt(all.Count / 2));
        }
    }
}
