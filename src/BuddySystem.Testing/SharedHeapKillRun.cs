using System.Diagnostics;
using System.Globalization;

namespace BuddySystem.Testing;

/// <summary>
/// Fault injection on a <see cref="SharedHeap"/>, shared by <c>buddy shm soak</c> and the process tests: each round
/// starts worker processes running <see cref="SharedHeapSlots.RunWorker"/> until killed, then opens the heap, validates
/// it and checks that the allocated blocks are exactly those named by non-zero slots (<see cref="SharedHeapSlots.Check"/>).
/// Half the workers are SIGKILLed by this process, each at its own random moment (so a survivor may find the first one's
/// interrupted call and recover it); the other half SIGKILL themselves at a random step inside a change to the heap
/// (its critical section is a small part of a call, so a kill from outside lands there only now and then).
/// </summary>
internal static class SharedHeapKillRun
{
    /// <summary>The line a worker writes on its standard output once it has opened the heap and starts its loop.</summary>
    internal const string ReadyLine = "ready";

    /// <summary>A worker that kills itself does so at a step drawn from [1, MaxCrashStep]: each call has 7 to 10 steps
    /// (the first just after the lock is taken, the last just before it is released), so within its first few hundred
    /// calls, and about one kill in five lands while the lock is held outside a change.</summary>
    private const ulong MaxCrashStep = 2000;

    /// <summary>What <see cref="Process.ExitCode"/> reports for a child that died of SIGKILL (128 + 9).</summary>
    private const int SigKillExitCode = 137;

    /// <summary>Runs rounds until <paramref name="kills"/> workers have been killed.</summary>
    /// <param name="path">The heap file; it must exist with an empty or consistent slot table.</param>
    /// <param name="kills">Workers to kill in all (rounds × workers, rounded up to whole rounds).</param>
    /// <param name="workers">Workers per round.</param>
    /// <param name="maxDelay">Each worker killed from outside is killed after a uniform random delay in [0, maxDelay) once
    /// all are ready.</param>
    /// <param name="seed">Fixes the delays and the workers' slot choices.</param>
    /// <param name="startWorker">Makes the command line of worker (index, count, seed, crash-after step or 0) on
    /// <paramref name="path"/>; it must redirect standard output and error and write <see cref="ReadyLine"/> once in its loop.</param>
    /// <param name="progress">Called after each round with (kills so far, blocks checked so far, recoveries so far).</param>
    /// <returns>What the run survived.</returns>
    /// <exception cref="SoakFailureException">A worker failed before it was killed, or a check found a lost or doubly owned block.</exception>
    /// <exception cref="HeapCorruptionException">The heap did not validate after a kill.</exception>
    internal static SharedHeapKillResult Run(
        string path,
        long kills,
        int workers,
        TimeSpan maxDelay,
        ulong seed,
        Func<int, int, ulong, long, ProcessStartInfo> startWorker,
        Action<long, long, long>? progress = null)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(kills);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(workers);
        ArgumentNullException.ThrowIfNull(startWorker);
        var random = new SplitMix64(seed);
        var recoveryTimes = new List<TimeSpan>();
        var openTimes = new List<TimeSpan>();
        long killed = 0, injected = 0, rounds = 0, blocks = 0, recoveriesAtStart, deathsAtStart;
        using (SharedHeap first = SharedHeap.Open(path))
        {
            recoveriesAtStart = first.Recoveries;
            deathsAtStart = first.LockOwnerDeaths;
        }

        long recoveries = 0, deaths = 0;
        var elapsed = Stopwatch.StartNew();
        while (killed < kills)
        {
            var processes = new Process[workers];
            var crashAfter = new long[workers];
            try
            {
                for (int w = 0; w < workers; w++)
                {
                    crashAfter[w] = ((rounds * workers) + w) % 2 == 1 ? 1 + (long)random.Next(MaxCrashStep) : 0;
                    processes[w] = Process.Start(startWorker(w, workers, random.Next(), crashAfter[w])) ?? throw new SoakFailureException("a worker process did not start");
                }

                foreach (Process process in processes)
                {
                    WaitUntilReady(process);
                }

                for (int w = 0; w < workers; w++)
                {
                    if (crashAfter[w] != 0)
                    {
                        continue;
                    }

                    Process process = processes[w];
                    Thread.Sleep(TimeSpan.FromTicks((long)random.Next((ulong)Math.Max(1, maxDelay.Ticks))));
                    if (process.HasExited)
                    {
                        throw new SoakFailureException($"worker {process.Id} exited with {process.ExitCode} before it was killed: {process.StandardError.ReadToEnd().Trim()}");
                    }

                    process.Kill(); // SIGKILL on Unix
                    process.WaitForExit();
                    killed++;
                }

                for (int w = 0; w < workers; w++)
                {
                    Process process = processes[w];
                    if (crashAfter[w] == 0)
                    {
                        continue;
                    }

                    if (!process.WaitForExit(TimeSpan.FromSeconds(60)) || process.ExitCode != SigKillExitCode)
                    {
                        string how = process.HasExited ? $"exited with {process.ExitCode}" : "was still running after 60 s";
                        throw new SoakFailureException($"worker {process.Id}, to kill itself at step {crashAfter[w]}, {how}: {(process.HasExited ? process.StandardError.ReadToEnd().Trim() : string.Empty)}");
                    }

                    killed++;
                    injected++;
                }
            }
            finally
            {
                foreach (Process? process in processes)
                {
                    if (process != null)
                    {
                        if (!process.HasExited)
                        {
                            process.Kill();
                            process.WaitForExit();
                        }

                        process.Dispose();
                    }
                }
            }

            long started = Stopwatch.GetTimestamp();
            using SharedHeap heap = SharedHeap.Open(path);
            TimeSpan open = Stopwatch.GetElapsedTime(started);
            (heap.RecoveredAtOpen ? recoveryTimes : openTimes).Add(open);
            heap.Validate();
            blocks += SharedHeapSlots.Check(heap, patterns: false);
            recoveries = heap.Recoveries - recoveriesAtStart;
            deaths = heap.LockOwnerDeaths - deathsAtStart;
            rounds++;
            progress?.Invoke(killed, blocks, recoveries);
        }

        return new SharedHeapKillResult(killed, injected, rounds, blocks, recoveries, recoveryTimes, openTimes, elapsed.Elapsed, deaths);
    }

    /// <summary>The median of <paramref name="times"/>; zero when empty.</summary>
    internal static TimeSpan Median(IReadOnlyList<TimeSpan> times)
    {
        if (times.Count == 0)
        {
            return TimeSpan.Zero;
        }

        TimeSpan[] sorted = [.. times.Order()];
        return sorted.Length % 2 == 1 ? sorted[sorted.Length / 2] : (sorted[(sorted.Length / 2) - 1] + sorted[sorted.Length / 2]) / 2;
    }

    private static void WaitUntilReady(Process process)
    {
        // Killing a worker before it is in its loop would test the runtime's start-up, not the heap.
        Task<string?> line = process.StandardOutput.ReadLineAsync();
        if (!line.Wait(TimeSpan.FromSeconds(60)) || line.Result != ReadyLine)
        {
            string why = line.IsCompleted ? $"wrote '{line.Result}'" : "did not start its loop within 60 s";
            string error = process.HasExited ? " " + process.StandardError.ReadToEnd().Trim() : string.Empty;
            throw new SoakFailureException(string.Create(CultureInfo.InvariantCulture, $"worker {process.Id} {why}{error}"));
        }
    }
}
