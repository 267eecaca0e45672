namespace BuddySystem.Cli.Commands;

/// <summary>
/// <c>buddy shm soak</c>: fault injection on a shared heap (<see cref="SharedHeapKillRun"/>). Rounds of child
/// <c>buddy shm-worker</c> processes run <c>AllocateInto</c>/<c>FreeFrom</c> on the root area's slot table and are
/// SIGKILLed at random moments (half by the soak, half by themselves at a random step inside a change); after each round the heap is opened, validated and checked: the allocated blocks must be
/// exactly those named by non-zero slots. Prints kills survived, blocks checked, recoveries and recovery times. Exit 0
/// when every check held, 1 on the first that did not, 2 on bad input.
/// </summary>
internal static class ShmSoakCommand
{
    internal static Command Create()
    {
        var kills = CommonOptions.AtLeast(new Option<long>("--kills") { Description = "Worker processes to SIGKILL in all.", DefaultValueFactory = _ => 1000 }, 1L);
        var workers = CommonOptions.AtLeast(new Option<int>("--workers") { Description = "Worker processes per round, each killed at its own moment (1 to 64).", DefaultValueFactory = _ => 2 }, 1);
        workers.Validators.Add(result =>
        {
            if (result.GetValueOrDefault<int>() > 64)
            {
                result.AddError("--workers must be at most 64.");
            }
        });
        var heap = CommonOptions.Heap("The shared heap's capacity", new ByteSize(4UL << 20), HeapRange.Shared);
        var seed = CommonOptions.Seed("SplitMix64 seed of the kill delays, the crash steps and the workers' slot choices.");
        var delay = CommonOptions.AtLeast(new Option<int>("--max-delay-ms") { Description = "A worker killed by the soak dies after a random 0 to N ms in its loop.", DefaultValueFactory = _ => 40 }, 1);
        var file = CommonOptions.Output(new Option<FileInfo?>("--file") { Description = "Make the heap here (it must not exist) and keep it for `buddy shm stat` or `buddy map --shared`; default a temporary file, deleted." });
        var command = new Command("soak", "SIGKILL worker processes at random moments inside AllocateInto/FreeFrom; after each kill validate the heap and check 0 lost, 0 doubly-owned blocks.")
        {
            kills, workers, heap, seed, delay, file,
        };
        command.SetAction(result => Run(
            Console.Out,
            result.InvocationConfiguration.Error,
            result.GetValue(kills),
            result.GetValue(workers),
            result.GetValue(heap).Bytes,
            result.GetValue(seed),
            result.GetValue(delay),
            result.GetValue(file),
            AnsiConsole.Console));
        return command;
    }

    /// <summary>Runs the soak and prints its figures; 0 when every check held, 1 on the first that did not, 2 when the
    /// heap cannot be made (the file exists, not Linux). Progress goes to <paramref name="progress"/> when it is a
    /// terminal (<see cref="CommandProgress"/>).</summary>
    internal static int Run(TextWriter output, TextWriter error, long kills, int workers, ulong heapBytes, ulong seed, int maxDelayMs, FileInfo? file, IAnsiConsole? progress = null)
    {
        const string Name = "buddy shm soak";
        if (!OperatingSystem.IsLinux())
        {
            error.WriteLine($"{Name}: SharedHeap needs Linux.");
            return 2;
        }

        string path = file?.FullName ?? Path.Combine(Directory.Exists("/dev/shm") ? "/dev/shm" : Path.GetTempPath(), $"buddy-shm-soak-{Environment.ProcessId}.heap");
        try
        {
            SharedHeap.Create(path, heapBytes).Dispose();
        }
        catch (IOException e)
        {
            error.WriteLine($"{Name}: {e.Message}");
            return 2;
        }

        bool keep = file != null;
        try
        {
            SharedHeapKillResult result = CommandProgress.Start(progress ?? AnsiConsole.Console, context =>
            {
                ProgressTask task = context.AddTask("shm soak: kills", maxValue: kills);
                return SharedHeapKillRun.Run(
                    path,
                    kills,
                    workers,
                    TimeSpan.FromMilliseconds(maxDelayMs),
                    seed,
                    (worker, count, workerSeed, crashAfter) => ShmWorkerCommand.StartInfo(path, worker, count, 0, workerSeed, crashAfter),
                    (done, blocks, recoveries) =>
                    {
                        task.Value = done;
                        task.Description = string.Create(CultureInfo.InvariantCulture, $"shm soak: {done:N0} kills, {blocks:N0} blocks checked, {recoveries:N0} recovered");
                    });
            });
            Report(output, result, workers, heapBytes, seed, maxDelayMs);
            return 0;
        }
        catch (Exception e) when (e is SoakFailureException or HeapCorruptionException)
        {
            output.WriteLine($"{Name}: FAILED (seed 0x{seed:x}, heap kept at {path}): {e.Message}");
            keep = true; // the evidence
            return 1;
        }
        finally
        {
            if (!keep)
            {
                File.Delete(path);
            }
        }
    }

    private static void Report(TextWriter output, SharedHeapKillResult result, int workers, ulong heapBytes, ulong seed, int maxDelayMs)
    {
        CultureInfo inv = CultureInfo.InvariantCulture;
        output.WriteLine(string.Create(inv, $"kills survived: {result.Kills:N0} ({result.Rounds:N0} rounds of {workers} worker{(workers == 1 ? string.Empty : "s")}; {ByteSize.Long(heapBytes)} heap, seed 0x{seed:x}): 0 lost, 0 doubly owned"));
        output.WriteLine(string.Create(inv, $"  {result.Kills - result.InjectedKills:N0} SIGKILLed by the soak 0-{maxDelayMs} ms into their loop, {result.InjectedKills:N0} SIGKILLed themselves at a random step inside a change to the heap"));
        output.WriteLine(string.Create(inv, $"blocks checked: {result.BlocksChecked:N0} (after each round every allocated block named by exactly one slot, of its slot's size)"));
        output.WriteLine(string.Create(inv, $"interrupted calls recovered: {result.Recoveries:N0} ({result.RecoveryTimes.Count:N0} by the checking Open, the others by a surviving worker)"));
        output.WriteLine(string.Create(inv, $"lock holders found dead: {result.LockOwnerDeaths:N0} (killed while holding the heap's robust mutex; the next caller got EOWNERDEAD)"));
        output.WriteLine($"recovery time (Open that recovered): {Times(result.RecoveryTimes)}");
        output.WriteLine($"open time (nothing to recover): {Times(result.OpenTimes)}");
        output.WriteLine(string.Create(inv, $"elapsed: {result.Elapsed.TotalSeconds:F1} s"));
    }

    private static string Times(IReadOnlyList<TimeSpan> times) => times.Count == 0
        ? "none"
        : string.Create(CultureInfo.InvariantCulture, $"min {Ms(times.Min())} / median {Ms(SharedHeapKillRun.Median(times))} / max {Ms(times.Max())} ms over {times.Count:N0} opens");

    private static string Ms(TimeSpan time) => time.TotalMilliseconds.ToString("0.000", CultureInfo.InvariantCulture);
}
