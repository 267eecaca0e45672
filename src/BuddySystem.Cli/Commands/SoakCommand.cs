namespace BuddySystem.Cli.Commands;

/// <summary>
/// <c>buddy soak</c>: the long single-thread random run of issue 6 (<see cref="SoakRun"/>) on each engine: every live
/// block patterned and checked on free, <c>Validate()</c> every 1 000 operations, everything freed at the end and the
/// largest block allocatable again. Exits 1 on the first broken promise.
/// </summary>
internal static class SoakCommand
{
    internal static Command Create()
    {
        var engine = CommonOptions.Allocators(EngineCatalog.TargetNames, "An engine to soak; repeat for several (default: all).");
        var operations = CommonOptions.AtLeast(new Option<long>("--operations") { Description = "Operations per engine.", DefaultValueFactory = _ => 10_000_000 }, 0);
        var seed = CommonOptions.Seed();
        var heap = CommonOptions.Heap("Heap size per engine", new ByteSize(16UL << 20), HeapRange.Engine);
        var validateEvery = CommonOptions.AtLeast(new Option<int>("--validate-every") { Description = "Run Validate() and check the accounting every N operations.", DefaultValueFactory = _ => 1000 }, 1);
        var command = new Command("soak", "Long random run per engine: patterned blocks checked on free, Validate() every 1 000 operations, all freed at the end.")
        {
            engine, operations, seed, heap, validateEvery,
        };
        command.SetAction(result => Run(
            Console.Out,
            result.GetValue(engine) is { Length: > 0 } names ? names : [.. EngineCatalog.TargetNames],
            result.GetValue(operations),
            result.GetValue(seed),
            result.GetValue(heap).Bytes,
            result.GetValue(validateEvery),
            AnsiConsole.Console));
        return command;
    }

    /// <summary>Runs the soak on each engine; returns 0 when all passed, 1 on the first failure. Progress goes to
    /// <paramref name="progress"/> when it is a terminal (<see cref="CommandProgress"/>).</summary>
    /// <exception cref="BadInputException">An unknown engine or a count out of range (the parser rejects them first).</exception>
    internal static int Run(TextWriter output, IReadOnlyList<string> engines, long operations, ulong seed, ulong heapBytes, int validateEvery, IAnsiConsole? progress = null)
    {
        if (engines.FirstOrDefault(name => !EngineCatalog.TargetNames.Contains(name)) is { } bad)
        {
            throw new BadInputException($"unknown engine '{bad}'; expected one of: {string.Join(", ", EngineCatalog.TargetNames)}.");
        }

        HeapRange.Engine.Check(heapBytes);
        if (operations < 0 || validateEvery < 1)
        {
            throw new BadInputException("--operations must be 0 or more, --validate-every 1 or more.");
        }

        foreach (string name in engines)
        {
            using HeapTarget target = EngineCatalog.CreateTarget(name, (nuint)heapBytes);
            try
            {
                SoakResult result = CommandProgress.Start(progress ?? AnsiConsole.Console, context =>
                {
                    ProgressTask task = context.AddTask($"soak {name}", maxValue: Math.Max(operations, 1));
                    return SoakRun.Run(target, seed, operations, validateEvery, progress: done => task.Value = done);
                });
                output.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"{result.Engine}: {result.Operations:N0} operations ({result.Allocations:N0} allocations, {result.FailedAllocations:N0} failed, {result.Frees:N0} frees, {result.Reallocations:N0} reallocations), {result.Validations:N0} validations, peak {result.PeakLiveBlocks:N0} live, {result.BytesChecked:N0} bytes checked, {result.Elapsed.TotalSeconds:F1} s: OK"));
            }
            catch (SoakFailureException error)
            {
                output.WriteLine($"{name}: FAILED (seed 0x{seed:x}): {error.Message}");
                return 1;
            }
            catch (HeapCorruptionException error)
            {
                output.WriteLine($"{name}: FAILED (seed 0x{seed:x}): {error.Message}");
                return 1;
            }
        }

        return 0;
    }
}
