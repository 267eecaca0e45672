using System.CommandLine;
using System.Globalization;
using BuddySystem.Cli.Engines;
using BuddySystem.Testing;

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
        var engine = new Option<string[]>("--engine") { Description = $"Engines to run ({string.Join(", ", EngineCatalog.TargetNames)}); all when omitted.", AllowMultipleArgumentsPerToken = true };
        var operations = new Option<long>("--operations") { Description = "Operations per engine.", DefaultValueFactory = _ => 10_000_000 };
        var seed = new Option<ulong>("--seed") { Description = "SplitMix64 seed; the run is fixed by it.", DefaultValueFactory = _ => 0x5EED };
        var heapMib = new Option<int>("--heap-mib") { Description = "Heap size in MiB.", DefaultValueFactory = _ => 16 };
        var validateEvery = new Option<int>("--validate-every") { Description = "Run Validate() and check the accounting every N operations.", DefaultValueFactory = _ => 1000 };
        var command = new Command("soak", "Long random run per engine: patterned blocks checked on free, Validate() every 1 000 operations, all freed at the end.")
        {
            engine, operations, seed, heapMib, validateEvery,
        };
        command.SetAction(result => Run(
            Console.Out,
            result.GetValue(engine) is { Length: > 0 } names ? names : [.. EngineCatalog.TargetNames],
            result.GetValue(operations),
            result.GetValue(seed),
            result.GetValue(heapMib),
            result.GetValue(validateEvery)));
        return command;
    }

    /// <summary>Runs the soak on each engine; returns 0 when all passed, 1 on the first failure.</summary>
    internal static int Run(TextWriter output, IReadOnlyList<string> engines, long operations, ulong seed, int heapMib, int validateEvery)
    {
        string? bad = engines.FirstOrDefault(name => !EngineCatalog.TargetNames.Contains(name));
        if (bad is not null || heapMib < 1 || heapMib > 1 << 20 || operations < 0 || validateEvery < 1)
        {
            Console.Error.WriteLine(bad is not null
                ? $"buddy soak: unknown engine '{bad}'; expected one of: {string.Join(", ", EngineCatalog.TargetNames)}."
                : "buddy soak: --heap-mib must be 1 to 1048576, --operations 0 or more, --validate-every 1 or more.");
            return 2;
        }

        foreach (string name in engines)
        {
            using HeapTarget target = EngineCatalog.CreateTarget(name, (nuint)heapMib << 20);
            try
            {
                SoakResult result = SoakRun.Run(target, seed, operations, validateEvery);
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
