using BuddySystem.Cli.Bench;
using BuddySystem.Cli.Bench.Programs;

namespace BuddySystem.Cli.Commands;

/// <summary>
/// <c>buddy bench</c>: the workloads W1–W6 of docs/benchmarks.md on the buddy heaps and their peers (glibc, NativeMemory,
/// mimalloc), and the pool workload on the buffer pools (<c>BuddyMemoryPool</c>, <c>ArrayPool</c>, <c>MemoryPool</c>, Kestrel's),
/// as ratios measured in the same run.
/// </summary>
internal static class BenchCommand
{
    // Timed runs per case by default: the median of five at full scale; one at quick scale, which is for a first look
    // and for CI, and must take seconds.
    private const int FullRuns = 5;
    private const int QuickRuns = 1;

    internal static Command Create(IAnsiConsole? console = null)
    {
        var workloads = new Option<string[]>("--workloads", "-w")
        {
            Description = $"A workload to run; repeat for several (default: all). Known: {string.Join(", ", WorkloadCase.Workloads)}.",
        };
        workloads.AcceptOnlyFromAmong([.. WorkloadCase.Workloads]);
        var allocators = CommonOptions.Allocators([.. BenchAllocators.All.Select(a => a.Id).Union(ProgramAllocator.Ids)], $"An allocator to run; repeat for several (default: all; with --programs: {string.Join(", ", ProgramAllocator.Ids)}).");
        var runs = CommonOptions.AtLeast(new Option<int>("--runs") { Description = $"Timed runs per case; the median is reported (default: {FullRuns}; {QuickRuns} with --quick).", DefaultValueFactory = _ => FullRuns }, 1);
        var quick = new Option<bool>("--quick") { Description = "Fewer operations, same shapes (for CI): seconds instead of minutes." };
        var json = CommonOptions.OutputPath("--json", "Write the results as JSON to this file.", ".json");
        var plot = CommonOptions.OutputPath("--plot", "Draw ns/op per workload and allocator to this PNG file.", ".png");
        var markdown = CommonOptions.OutputPath("--markdown", "Write the tables as Markdown to this file (for docs/benchmarks.md).", ".md");
        var programs = new Option<bool>("--programs")
        {
            Description = $"Workload P instead: process starts and real programs on glibc, mimalloc, jemalloc, tcmalloc, Scudo and libbuddymalloc.so (LD_PRELOAD; a missing peer is skipped with a note); wall time, max RSS, output checked. -a picks among {string.Join(", ", ProgramAllocator.Ids)}.",
        };
        var misuse = new Option<bool>("--misuse")
        {
            Description = $"The heap-misuse battery instead: {MisuseBattery.Cases.Count} cases (double, interior, foreign frees, realloc of a freed block, racing frees, writes after free, past the end, before the start), each in a child process under each malloc; prints which stops what. -a picks among {string.Join(", ", ProgramAllocator.Ids)}.",
        };
        var program = new Option<string[]>("--program")
        {
            Description = $"With --programs: a program to run; repeat for several (default: all). Known: {string.Join(", ", ProgramSet.Names)}.",
        };
        program.AcceptOnlyFromAmong([.. ProgramSet.Names]);
        var library = CommonOptions.MallocLibrary($"With --programs or --misuse: libbuddymalloc.so (default: {RunCommand.LibraryPath} above the current folder or the tool).");

        var command = new Command("bench", "Run the workloads W1-W6 (docs/benchmarks.md) on the buddy heaps and on glibc, NativeMemory and mimalloc, and the pool workload on BuddyMemoryPool, ArrayPool, MemoryPool and Kestrel's pool; print ns/op and ratios. With --programs, workload P: real programs on each malloc.")
        {
            workloads, allocators, runs, quick, json, plot, markdown, programs, misuse, program, library,
        };
        command.SetAction(result =>
        {
            IAnsiConsole output = console ?? AnsiConsole.Console;
            int runCount = result.GetValue(quick) && result.GetResult(runs) is not { Implicit: false } ? QuickRuns : result.GetValue(runs);
            if (result.GetValue(misuse))
            {
                return result.GetValue(programs) || (result.GetValue(workloads) ?? []).Length != 0 || (result.GetValue(program) ?? []).Length != 0 || result.GetValue(plot) is not null
                    ? throw new BadInputException("--misuse does not go with --programs, --workloads, --program or --plot")
                    : RunMisuse(output, result.GetValue(allocators), result.GetValue(library)?.FullName, result.GetValue(json), result.GetValue(markdown));
            }

            if (!result.GetValue(programs))
            {
                return (result.GetValue(program) ?? []).Length != 0 || result.GetValue(library) is not null
                    ? throw new BadInputException("--program and --library go with --programs")
                    : Run(output, result.GetValue(workloads), result.GetValue(allocators), runCount, result.GetValue(quick),
                        result.GetValue(json), result.GetValue(plot), result.GetValue(markdown));
            }

            return (result.GetValue(workloads) ?? []).Length != 0
                ? throw new BadInputException("--workloads does not go with --programs (workload P); use --program to pick programs")
                : RunPrograms(output, result.GetValue(program), result.GetValue(allocators), runCount, result.GetValue(quick),
                    result.GetValue(library)?.FullName, result.GetValue(json), result.GetValue(plot), result.GetValue(markdown));
        });
        return command;
    }

    /// <summary>The C allocators <paramref name="mode"/> (<c>--misuse</c>, <c>--programs</c>) runs programs under: those
    /// named (all when none), <c>buddy</c> from <paramref name="library"/> or the one <see cref="RunCommand.FindLibrary"/> finds.</summary>
    /// <exception cref="BadInputException">An unknown name, or a library file that does not exist.</exception>
    private static List<ProgramAllocator> ProgramAllocators(string[]? allocatorIds, string? library, string mode)
    {
        var ids = new List<string>();
        foreach (string id in allocatorIds ?? [])
        {
            ids.Add(ProgramAllocator.Ids.FirstOrDefault(n => n == id) ?? throw new BadInputException($"unknown allocator '{id}' for {mode} (known: {string.Join(", ", ProgramAllocator.Ids)})"));
        }

        if (library is not null && !File.Exists(library))
        {
            throw new BadInputException($"--library: {library} not found");
        }

        library ??= RunCommand.FindLibrary();
        return [.. ProgramAllocator.Ids.Where(id => ids.Count == 0 || ids.Contains(id)).Select(id => ProgramAllocator.Create(id, library))];
    }

    /// <summary><c>buddy bench --misuse</c>: the misuse battery under each malloc; bad names throw <see cref="BadInputException"/>.</summary>
    /// <returns>0: the battery ran (what each allocator catches is a finding, not a failure).</returns>
    internal static int RunMisuse(IAnsiConsole console, string[]? allocatorIds, string? library, string? jsonPath, string? markdownPath)
    {
        List<ProgramAllocator> allocators = ProgramAllocators(allocatorIds, library, "--misuse");
        string folder = Directory.CreateTempSubdirectory("buddy-misuse-").FullName;
        try
        {
            console.MarkupLine($"[grey]{Markup.Escape(BenchMachine.Describe())}; load {Markup.Escape(BenchMachine.Load)}[/]");
            List<MisuseBattery.Outcome> outcomes = MisuseBattery.Run(allocators, folder, console);
            MisuseBattery.WriteTable(console, allocators, outcomes);
            ReportFiles.Write(console, jsonPath, path => MisuseBattery.WriteJson(path, allocators, outcomes));

            ReportFiles.Write(console, markdownPath, path => MisuseBattery.WriteMarkdown(path, allocators, outcomes));

            return 0;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or InvalidOperationException)
        {
            throw new BadInputException(e.Message, e);
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }

    /// <summary><c>buddy bench --programs</c>: workload P (docs/benchmarks.md); bad names throw <see cref="BadInputException"/>.</summary>
    internal static int RunPrograms(IAnsiConsole console, string[]? programNames, string[]? allocatorIds, int runs, bool quick, string? library,
        string? jsonPath, string? plotPath, string? markdownPath)
    {
        var names = new List<string>();
        foreach (string name in programNames ?? [])
        {
            names.Add(ProgramSet.Names.FirstOrDefault(n => n == name) ?? throw new BadInputException($"unknown program '{name}' (known: {string.Join(", ", ProgramSet.Names)})"));
        }

        List<ProgramAllocator> allocators = ProgramAllocators(allocatorIds, library, "--programs");
        if (runs < 1)
        {
            throw new BadInputException("--runs must be at least 1");
        }

        string folder = Directory.CreateTempSubdirectory("buddy-programs-").FullName;
        try
        {
            List<BenchProgram> programs = ProgramSet.Prepare(folder, ProgramSet.Names.Where(n => names.Count == 0 || names.Contains(n)).ToList(), quick);
            console.MarkupLine($"[grey]{Markup.Escape(BenchMachine.Describe())}; load {Markup.Escape(BenchMachine.Load)}; {(quick ? "quick" : "full")} scale, median of {runs} runs[/]");
            List<BenchResult> results = ProgramBench.Run(programs, allocators, runs, folder, console);
            BenchReport.WriteProgramTables(console, programs, allocators, results, runs);
            ReportFiles.Write(console, jsonPath, path => BenchReport.WriteJson(path, quick, runs, results,
                    programs.Where(p => p.Unavailable is not null).Select(p => (p.Name, p.Unavailable!))
                        .Concat(allocators.Where(a => a.Unavailable is not null).Select(a => (a.Id, a.Unavailable!)))));
            ReportFiles.Write(console, markdownPath, path => BenchReport.WriteProgramMarkdown(path, programs, allocators, results, runs, quick));

            ReportFiles.Write(console, plotPath, path => BenchPlot.SavePrograms(path, results, $"{BenchMachine.Describe()}, load {BenchMachine.Load}, median of {runs} runs{(quick ? ", quick scale" : "")}"));

            // A row whose output differs from glibc's is a wrong result, not a slow one: the command fails.
            return results.All(r => r.SameOutput != false) ? 0 : 1;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or InvalidOperationException)
        {
            throw new BadInputException(e.Message, e);
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }

    /// <summary>Runs the workloads; the names were validated by the parser (an unknown one throws <see cref="BadInputException"/>).</summary>
    internal static int Run(IAnsiConsole console, string[]? workloadNames, string[]? allocatorIds, int runs, bool quick, string? jsonPath, string? plotPath, string? markdownPath = null)
    {
        var workloads = new List<string>();
        foreach (string name in workloadNames ?? [])
        {
            workloads.Add(WorkloadCase.Workloads.FirstOrDefault(w => w == name) ?? throw new BadInputException($"unknown workload '{name}' (known: {string.Join(", ", WorkloadCase.Workloads)})"));
        }

        var allocators = new List<BenchAllocatorEntry>();
        foreach (string id in allocatorIds ?? [])
        {
            allocators.Add(BenchAllocators.Find(id) ?? throw new BadInputException($"unknown allocator '{id}' (known: {string.Join(", ", BenchAllocators.All.Select(a => a.Id))})"));
        }

        if (runs < 1)
        {
            throw new BadInputException("--runs must be at least 1");
        }

        var options = new BenchOptions(
            workloads.Count == 0 ? WorkloadCase.Workloads : WorkloadCase.Workloads.Where(workloads.Contains).ToList(),
            allocators.Count == 0 ? BenchAllocators.All : BenchAllocators.All.Where(allocators.Contains).ToList(),
            runs,
            quick ? BenchScale.Quick : BenchScale.Full,
            jsonPath,
            plotPath);

        foreach (BenchAllocatorEntry missing in options.Allocators.Where(a => a.Unavailable is not null))
        {
            console.MarkupLine($"[yellow]{Markup.Escape(missing.Id)}: not available: {Markup.Escape(missing.Unavailable!)}; the run goes on without it.[/]");
        }

        console.MarkupLine($"[grey]{Markup.Escape(BenchMachine.Describe())}; {Markup.Escape(BenchMachine.Runtime)}; {(quick ? "quick" : "full")} scale, median of {runs} runs[/]");
        List<BenchResult> results = BenchRunner.Run(options, console);
        BenchReport.WriteTables(console, options, results);
        try
        {
            ReportFiles.Write(console, jsonPath, path => BenchReport.WriteJson(path, options, results));
            ReportFiles.Write(console, markdownPath, path => BenchReport.WriteMarkdown(path, options, results));
            ReportFiles.Write(console, plotPath, path => BenchPlot.Save(path, results, $"{BenchMachine.Describe()}, median of {runs} runs{(quick ? ", quick scale" : "")}"));
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new BadInputException($"cannot write the output: {e.Message}", e);
        }

        return 0;
    }
}
