namespace BuddySystem.Cli.Commands;

/// <summary>
/// <c>buddy shm-worker FILE WORKER WORKERS OPS [SEED [CRASH-AFTER]]</c> (hidden): the child process of <c>buddy shm soak</c> and the
/// shared-heap process tests. It opens the heap, writes <see cref="SharedHeapKillRun.ReadyLine"/> and runs
/// <see cref="SharedHeapSlots.RunWorker"/> on its share of the root area's slot table. OPS = 0 runs until killed;
/// CRASH-AFTER = K &gt; 0 makes it SIGKILL itself at the K-th step of a change to the heap.
/// Exit 0 when done, 1 when a pattern was wrong.
/// </summary>
internal static class ShmWorkerCommand
{
    internal static Command Create()
    {
        var file = new Argument<string>("file");
        var worker = new Argument<int>("worker");
        var workers = new Argument<int>("workers");
        var ops = new Argument<long>("ops");
        var seed = new Argument<ulong>("seed") { DefaultValueFactory = _ => (ulong)Environment.ProcessId };
        var crashAfter = new Argument<long>("crash-after") { DefaultValueFactory = _ => 0 };
        var command = new Command("shm-worker", "Child process of the shared-heap soak and tests.") { file, worker, workers, ops, seed, crashAfter };
        command.Hidden = true;
        command.SetAction(result => Run(result.GetValue(file)!, result.GetValue(worker), result.GetValue(workers), result.GetValue(ops), result.GetValue(seed), result.GetValue(crashAfter)));
        return command;
    }

    internal static int Run(string path, int worker, int workers, long ops, ulong seed, long crashAfter)
    {
        using SharedHeap heap = SharedHeap.Open(path);
        Console.Out.WriteLine(SharedHeapKillRun.ReadyLine);
        Console.Out.Flush();
        try
        {
            SharedHeapSlots.RunWorker(heap, worker, workers, ops, seed, crashAfter);
        }
        catch (SoakFailureException e)
        {
            Console.Error.WriteLine($"shm-worker {worker}: {e.Message}");
            return 1;
        }

        return 0;
    }

    /// <summary>How to start this tool as worker <paramref name="worker"/> of <paramref name="workers"/> on
    /// <paramref name="path"/>, with standard output and error redirected: the tool's own executable when it runs as one,
    /// else <c>dotnet buddy.dll</c>. <paramref name="crashAfter"/> as for the command.</summary>
    internal static ProcessStartInfo StartInfo(string path, int worker, int workers, long ops, ulong seed, long crashAfter = 0)
        => ToolProcess.StartInfo("shm-worker", path, Str(worker), Str(workers), Str(ops), seed.ToString(CultureInfo.InvariantCulture), Str(crashAfter));

    private static string Str(long value) => value.ToString(CultureInfo.InvariantCulture);
}
