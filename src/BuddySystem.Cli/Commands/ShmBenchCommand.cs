namespace BuddySystem.Cli.Commands;

/// <summary>
/// <c>buddy shm bench</c>: workload W3 (docs/benchmarks.md) on N processes at once, all on one <see cref="SharedHeap"/> of
/// 32 MiB per process in <c>/dev/shm</c> (as W5 sizes its heap), each process its own seed 0x5EED + index; the same
/// on Boost.Interprocess <c>managed_shared_memory</c> (<c>bench/shm-boost/w3_boost.cpp</c>, compiled here with g++; skipped
/// with a note when g++ or Boost's headers are absent). The processes start together at a barrier; the figure is total
/// operations per second (N × ops ÷ the wall time from the barrier to the last process done), the median of the runs,
/// which alternate between the two heaps. Exit 0, or 1 when a worker failed, 2 on bad input.
/// </summary>
internal static class ShmBenchCommand
{
    private const string Name = "buddy shm bench";
    private const string BoostHeader = "/usr/include/boost/interprocess/managed_shared_memory.hpp";

    internal static Command Create()
    {
        var processes = new Option<int[]>("--processes", "-n") { Description = "Process counts to run (repeatable), 1 to 16; default 1, 2 and 4.", AllowMultipleArgumentsPerToken = true };
        processes.Validators.Add(result =>
        {
            foreach (int n in result.GetValueOrDefault<int[]>() ?? [])
            {
                if (n is < 1 or > 16)
                {
                    result.AddError(string.Create(CultureInfo.InvariantCulture, $"--processes must be from 1 to 16, not {n}."));
                }
            }
        });
        var ops = CommonOptions.AtLeast(new Option<long>("--ops") { Description = "W3 operations per process.", DefaultValueFactory = _ => 2_000_000 }, 1L);
        var runs = CommonOptions.AtLeast(new Option<int>("--runs") { Description = "Runs per case; the median is reported.", DefaultValueFactory = _ => 3 }, 1);
        var noBoost = new Option<bool>("--no-boost") { Description = "Skip the Boost.Interprocess peer." };
        var command = new Command("bench", "W3 on N processes sharing one heap: SharedHeap against Boost.Interprocess managed_shared_memory, total ops/s.")
        {
            processes, ops, runs, noBoost,
        };
        command.SetAction(result =>
        {
            int[] counts = result.GetValue(processes) is { Length: > 0 } given ? given : [1, 2, 4];
            return Run(Console.Out, result.InvocationConfiguration.Error, counts, result.GetValue(ops), result.GetValue(runs), !result.GetValue(noBoost));
        });
        return command;
    }

    internal static int Run(TextWriter output, TextWriter error, int[] counts, long ops, int runs, bool boost)
    {
        if (!OperatingSystem.IsLinux())
        {
            error.WriteLine($"{Name}: SharedHeap needs Linux.");
            return 2;
        }

        string? boostProgram = null;
        if (boost)
        {
            boostProgram = BuildBoost(out string? why);
            if (boostProgram == null)
            {
                output.WriteLine($"note: the Boost.Interprocess peer is skipped: {why}");
            }
        }

        CultureInfo inv = CultureInfo.InvariantCulture;
        output.WriteLine(string.Create(inv, $"W3 on N processes sharing one heap of 32 MiB per process; {ops:N0} operations per process; median of {runs} run{(runs == 1 ? string.Empty : "s")}; total Mops/s (higher is better)"));
        output.WriteLine(boostProgram != null ? "  N   shared-heap   boost   shared ÷ boost   failed" : "  N   shared-heap   failed");
        try
        {
            foreach (int n in counts)
            {
                var ours = new List<double>();
                var theirs = new List<double>();
                long failed = 0;
                for (int run = 0; run < runs; run++)
                {
                    (double rate, long lost) = RunShared(n, ops);
                    ours.Add(rate);
                    failed += lost;
                    if (boostProgram != null)
                    {
                        (rate, lost) = RunBoost(boostProgram, n, ops);
                        theirs.Add(rate);
                        failed += lost;
                    }
                }

                double mine = Median(ours);
                output.WriteLine(boostProgram != null
                    ? string.Create(inv, $"  {n,-3} {mine / 1e6,11:0.00}   {Median(theirs) / 1e6,5:0.00}   {mine / Median(theirs),14:0.00}×   {failed}")
                    : string.Create(inv, $"  {n,-3} {mine / 1e6,11:0.00}   {failed}"));
            }
        }
        catch (InvalidOperationException e)
        {
            error.WriteLine($"{Name}: {e.Message}");
            return 1;
        }

        return 0;
    }

    /// <summary>One run of <paramref name="n"/> worker processes on a new heap; total ops/s and failed allocations.</summary>
    private static unsafe (double Rate, long Failed) RunShared(int n, long ops)
    {
        string directory = Directory.Exists("/dev/shm") ? "/dev/shm" : Path.GetTempPath();
        string path = Path.Combine(directory, $"buddy-shm-bench-{Environment.ProcessId}-{n}.heap");
        File.Delete(path);
        var workers = new List<Process>();
        try
        {
            using (SharedHeap heap = SharedHeap.Create(path, (32UL << 20) * (ulong)n))
            {
                new Span<byte>(heap.Pointer(heap.DataOffset), checked((int)heap.Capacity)).Clear(); // touch the pages before timing
            }

            for (int i = 0; i < n; i++)
            {
                workers.Add(Process.Start(ShmBenchWorkerCommand.StartInfo(path, i, ops)) ?? throw new InvalidOperationException("a worker did not start"));
            }

            foreach (Process worker in workers)
            {
                Expect(worker, "ready");
            }

            long started = Stopwatch.GetTimestamp();
            foreach (Process worker in workers)
            {
                worker.StandardInput.WriteLine("go");
                worker.StandardInput.Flush();
            }

            long failed = 0;
            foreach (Process worker in workers)
            {
                string[] done = Expect(worker, "done").Split(' ');
                failed += long.Parse(done[2], CultureInfo.InvariantCulture);
            }

            double seconds = Stopwatch.GetElapsedTime(started).TotalSeconds;
            foreach (Process worker in workers)
            {
                worker.WaitForExit();
            }

            return (n * ops / seconds, failed);
        }
        finally
        {
            foreach (Process worker in workers)
            {
                if (!worker.HasExited)
                {
                    worker.Kill();
                    worker.WaitForExit();
                }

                worker.Dispose();
            }

            File.Delete(path);
        }
    }

    private static string Expect(Process worker, string word)
    {
        string? line = worker.StandardOutput.ReadLine();
        if (line == null || !line.StartsWith(word, StringComparison.Ordinal))
        {
            throw new InvalidOperationException($"worker {worker.Id} wrote '{line}' where '{word}' was due: {worker.StandardError.ReadToEnd().Trim()}");
        }

        return line;
    }

    private static (double Rate, long Failed) RunBoost(string program, int n, long ops)
    {
        var start = new ProcessStartInfo(program) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        start.ArgumentList.Add(n.ToString(CultureInfo.InvariantCulture));
        start.ArgumentList.Add(ops.ToString(CultureInfo.InvariantCulture));
        using Process process = Process.Start(start) ?? throw new InvalidOperationException("the Boost peer did not start");
        string text = process.StandardOutput.ReadToEnd();
        process.WaitForExit();
        var fields = text.Split([' ', '\n'], StringSplitOptions.RemoveEmptyEntries)
            .Select(f => f.Split('=')).Where(kv => kv.Length == 2).ToDictionary(kv => kv[0], kv => kv[1]);
        if (process.ExitCode != 0 || !fields.TryGetValue("wall_ns", out string? wall) || !fields.TryGetValue("failed", out string? failed))
        {
            throw new InvalidOperationException($"the Boost peer exited with {process.ExitCode}: {process.StandardError.ReadToEnd().Trim()}");
        }

        return (n * ops / (double.Parse(wall, CultureInfo.InvariantCulture) / 1e9), long.Parse(failed, CultureInfo.InvariantCulture));
    }

    /// <summary>Compiles the embedded <c>w3_boost.cpp</c> into a temporary folder; null with the reason when it cannot.</summary>
    private static string? BuildBoost(out string? why)
    {
        why = null;
        if (!File.Exists(BoostHeader))
        {
            why = $"no Boost.Interprocess headers ({BoostHeader}; apt-get install libboost-dev)";
            return null;
        }

        string folder = Directory.CreateTempSubdirectory("buddy-shm-boost-").FullName;
        string source = Path.Combine(folder, "w3_boost.cpp");
        string program = Path.Combine(folder, "w3_boost");
        using (Stream resource = typeof(ShmBenchCommand).Assembly.GetManifestResourceStream("BuddySystem.Cli.Bench.w3_boost.cpp")!)
        using (FileStream file = File.Create(source))
        {
            resource.CopyTo(file);
        }

        var start = new ProcessStartInfo("g++") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (string arg in new[] { "-O2", "-std=c++17", source, "-o", program, "-lpthread", "-lrt" })
        {
            start.ArgumentList.Add(arg);
        }

        try
        {
            using Process compiler = Process.Start(start)!;
            string errors = compiler.StandardError.ReadToEnd();
            compiler.WaitForExit();
            if (compiler.ExitCode != 0)
            {
                why = "g++ failed: " + errors.Split('\n').FirstOrDefault(l => l.Contains("error", StringComparison.Ordinal))?.Trim();
                return null;
            }
        }
        catch (System.ComponentModel.Win32Exception)
        {
            why = "no g++ (apt-get install g++)";
            return null;
        }

        return program;
    }

    private static double Median(List<double> values)
    {
        values.Sort();
        return values[values.Count / 2];
    }
}
