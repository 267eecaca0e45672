using BuddySystem.Cli.Bench;

namespace BuddySystem.Cli.Commands;

/// <summary>
/// <c>buddy shm-bench-worker FILE INDEX OPS</c> (hidden): a child process of <c>buddy shm bench</c>. It opens the heap,
/// writes <c>ready</c>, waits for a line on standard input, runs workload W3 (docs/benchmarks.md) for OPS operations with the
/// seed 0x5EED + INDEX on the shared heap, frees what is left, and writes <c>done TICKS FAILED</c> (its own time in
/// <see cref="Stopwatch"/> ticks, its failed allocations).
/// </summary>
internal static class ShmBenchWorkerCommand
{
    internal static Command Create()
    {
        var file = new Argument<string>("file");
        var index = new Argument<int>("index");
        var ops = new Argument<long>("ops");
        var command = new Command("shm-bench-worker", "Child process of `buddy shm bench`.") { file, index, ops };
        command.Hidden = true;
        command.SetAction(result => Run(result.GetValue(file)!, result.GetValue(index), result.GetValue(ops), Console.In, Console.Out));
        return command;
    }

    internal static int Run(string path, int index, long ops, TextReader input, TextWriter output)
    {
        using SharedHeap heap = SharedHeap.Open(path);
        var live = new ulong[W3Stream.LiveCap];
        var stream = new W3Stream(W3Stream.DefaultSeed + (ulong)index);
        output.WriteLine("ready");
        output.Flush();
        _ = input.ReadLine();
        long failed = 0;
        long started = Stopwatch.GetTimestamp();
        for (long op = 0; op < ops; op++)
        {
            W3Op next = stream.Next();
            if (next.IsAllocate)
            {
                if (heap.TryAllocate(next.Size, W3Stream.Align, out ulong offset))
                {
                    live[next.Index] = offset;
                }
                else
                {
                    // Keep the stream's live count: a failed block is freed as a no-op later (offset 0 marks it).
                    live[next.Index] = 0;
                    failed++;
                }
            }
            else
            {
                ulong offset = live[next.Index];
                live[next.Index] = live[stream.Live];
                live[stream.Live] = 0;
                if (offset != 0)
                {
                    heap.Free(offset);
                }
            }
        }

        long ticks = Stopwatch.GetTimestamp() - started;
        for (int i = 0; i < stream.Live; i++)
        {
            if (live[i] != 0)
            {
                heap.Free(live[i]);
            }
        }

        output.WriteLine(string.Create(CultureInfo.InvariantCulture, $"done {ticks} {failed}"));
        output.Flush();
        return 0;
    }

    /// <summary>How to start this tool as worker <paramref name="index"/> on <paramref name="path"/>, standard input,
    /// output and error redirected (as <see cref="ShmWorkerCommand.StartInfo"/> finds the tool).</summary>
    internal static ProcessStartInfo StartInfo(string path, int index, long ops)
    {
        ProcessStartInfo start = ShmWorkerCommand.StartInfo(path, 0, 1, 0, 0);
        start.ArgumentList.Clear();
        if (start.FileName != Path.Combine(Path.GetDirectoryName(typeof(ShmBenchWorkerCommand).Assembly.Location)!, "buddy"))
        {
            start.ArgumentList.Add(typeof(ShmBenchWorkerCommand).Assembly.Location);
        }

        start.ArgumentList.Add("shm-bench-worker");
        start.ArgumentList.Add(path);
        start.ArgumentList.Add(index.ToString(CultureInfo.InvariantCulture));
        start.ArgumentList.Add(ops.ToString(CultureInfo.InvariantCulture));
        start.RedirectStandardInput = true;
        return start;
    }
}
