using System.CommandLine;
using System.Globalization;
using BuddySystem.Cli.Engines;
using BuddySystem.Testing;

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
        var threads = new Option<int>("--threads") { Description = "Threads per round.", DefaultValueFactory = _ => 4 };
        var scale = new Option<int>("--scale") { Description = "Work per thread: 100 x scale x (tid % 8 + 1) allocations.", DefaultValueFactory = _ => 25 };
        var iterations = new Option<int>("--iterations") { Description = "Rounds; each starts fresh threads, blocks survive between rounds in the transfer array.", DefaultValueFactory = _ => 10 };
        var allocator = new Option<string>("--allocator") { Description = $"Thread-safe heap to stress ({string.Join(", ", EngineCatalog.ThreadSafeNames)}).", DefaultValueFactory = _ => "locked-heap" };
        var heapMib = new Option<int>("--heap-mib") { Description = "Heap size in MiB.", DefaultValueFactory = _ => 256 };
        var seed = new Option<ulong>("--seed") { Description = "SplitMix64 seed.", DefaultValueFactory = _ => 0x5EED };
        var command = new Command("stress", "Multi-thread stress after mimalloc's test-stress: blocks traded between threads, every word checked at free.")
        {
            threads, scale, iterations, allocator, heapMib, seed,
        };
        command.SetAction(result => Run(
            Console.Out,
            result.GetValue(allocator) ?? "locked-heap",
            result.GetValue(threads),
            result.GetValue(scale),
            result.GetValue(iterations),
            result.GetValue(heapMib),
            result.GetValue(seed)));
        return command;
    }

    /// <summary>Runs the stress and prints its summary; returns 0 with no corruption, 1 otherwise.</summary>
    internal static int Run(TextWriter output, string allocator, int threads, int scale, int iterations, int heapMib, ulong seed)
    {
        if (heapMib < 1 || heapMib > 1 << 20 || threads < 1 || scale < 1 || iterations < 1)
        {
            Console.Error.WriteLine("buddy stress: --heap-mib must be 1 to 1048576; --threads, --scale and --iterations 1 or more.");
            return 2;
        }

        if (!EngineCatalog.ThreadSafeNames.Contains(allocator))
        {
            Console.Error.WriteLine($"unknown or not thread-safe allocator '{allocator}'; expected one of: {string.Join(", ", EngineCatalog.ThreadSafeNames)}");
            return 2;
        }

        using HeapTarget target = EngineCatalog.CreateTarget(allocator, (nuint)heapMib << 20);
        StressResult result;
        try
        {
            result = StressRun.Run(target, threads, scale, iterations, seed);
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
