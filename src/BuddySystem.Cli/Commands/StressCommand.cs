namespace BuddySystem.Cli.Commands;

/// <summary>
/// <c>buddy stress</c>: mimalloc's test-stress shape (<see cref="StressRun"/>) on a thread-safe heap. Prints the
/// operations per second and the number of corruptions found; exits 1 when any block came back changed or the heap
/// does not validate afterwards.
/// </summary>
internal static class StressCommand
{
    internal static Command Create()
    {
        var threads = CommonOptions.AtLeast(new Option<int>("--threads") { Description = "Threads per round.", DefaultValueFactory = _ => 4 }, 1);
        var scale = CommonOptions.AtLeast(new Option<int>("--scale") { Description = "Work per thread: 100 x scale x (tid % 8 + 1) allocations.", DefaultValueFactory = _ => 25 }, 1);
        var iterations = CommonOptions.AtLeast(new Option<int>("--iterations") { Description = "Rounds; each starts fresh threads, blocks survive between rounds in the transfer array.", DefaultValueFactory = _ => 10 }, 1);
        var allocator = CommonOptions.Allocators(EngineCatalog.ThreadSafeNames, "A thread-safe heap to stress; repeat for several, one after the other (default: locked-heap).");
        var heap = CommonOptions.Heap("Heap size", new ByteSize(256UL << 20), HeapRange.Engine);
        var seed = CommonOptions.Seed();
        var command = new Command("stress", "Multi-thread stress after mimalloc's test-stress: blocks traded between threads, every word checked at free.")
        {
            threads, scale, iterations, allocator, heap, seed,
        };
        command.SetAction(result =>
        {
            foreach (string name in result.GetValue(allocator) is { Length: > 0 } names ? names : ["locked-heap"])
            {
                int exit = Run(Console.Out, name, result.GetValue(threads), result.GetValue(scale), result.GetValue(iterations), result.GetValue(heap).Bytes, result.GetValue(seed), AnsiConsole.Console);
                if (exit != 0)
                {
                    return exit;
                }
            }

            return 0;
        });
        return command;
    }

    /// <summary>Runs the stress and prints its summary; returns 0 with no corruption, 1 otherwise. Progress (rounds) goes
    /// to <paramref name="progress"/> when it is a terminal (<see cref="CommandProgress"/>).</summary>
    /// <exception cref="BadInputException">A count out of range or an engine that is not thread-safe (the parser rejects them first).</exception>
    internal static int Run(TextWriter output, string allocator, int threads, int scale, int iterations, ulong heapBytes, ulong seed, IAnsiConsole? progress = null)
    {
        HeapRange.Engine.Check(heapBytes);
        if (threads < 1 || scale < 1 || iterations < 1)
        {
            throw new BadInputException("--threads, --scale and --iterations must be 1 or more.");
        }

        if (!EngineCatalog.ThreadSafeNames.Contains(allocator))
        {
            throw new BadInputException($"unknown or not thread-safe allocator '{allocator}'; expected one of: {string.Join(", ", EngineCatalog.ThreadSafeNames)}");
        }

        using HeapTarget target = EngineCatalog.CreateTarget(allocator, (nuint)heapBytes);
        StressResult result;
        try
        {
            result = CommandProgress.Start(progress ?? AnsiConsole.Console, context =>
            {
                ProgressTask task = context.AddTask($"stress {allocator}", maxValue: iterations);
                return StressRun.Run(target, threads, scale, iterations, seed, done => task.Value = done);
            });
        }
        catch (HeapCorruptionException error)
        {
            output.WriteLine($"{allocator}: FAILED: {error.Message}");
            return 1;
        }

        output.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"{result.Engine}: {result.Threads} threads x scale {result.Scale} x {result.Iterations} iterations: {result.Operations:N0} operations ({result.Allocations:N0} allocations, {result.Frees:N0} frees, {result.FailedAllocations:N0} failed, {result.Transfers:N0} transfers) in {result.Elapsed.TotalSeconds:F2} s, {result.OperationsPerSecond:N0} ops/s"));
        output.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{result.Corruptions} corruptions"));
        if (result.Corruptions != 0)
        {
            output.WriteLine($"first: {result.FirstCorruption}");
            return 1;
        }

        return 0;
    }
}
