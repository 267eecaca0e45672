using System.CommandLine;
using BuddySystem.Cli.Bench;
using Spectre.Console;

namespace BuddySystem.Cli.Commands;

/// <summary>
/// <c>buddy bench</c>: the workloads W1–W6 of DESIGN.md §5 on the buddy heaps and their peers (glibc, NativeMemory,
/// mimalloc), as ratios measured in the same run.
/// </summary>
internal static class BenchCommand
{
    internal static Command Create(IAnsiConsole? console = null)
    {
        var workloads = new Option<string[]>("--workloads", "-w")
        {
            Description = $"A workload to run; repeat for several (default: all). Known: {string.Join(", ", WorkloadCase.Workloads)}.",
        };
        workloads.AcceptOnlyFromAmong([.. WorkloadCase.Workloads]);
        var allocators = CommonOptions.Allocators([.. BenchAllocators.All.Select(a => a.Id)], "An allocator to run; repeat for several (default: all).");
        var runs = CommonOptions.AtLeast(new Option<int>("--runs") { Description = "Timed runs per case; the median is reported.", DefaultValueFactory = _ => 5 }, 1);
        var quick = new Option<bool>("--quick") { Description = "Fewer operations, same shapes (for CI): seconds instead of minutes." };
        var json = new Option<string?>("--json") { Description = "Write the results as JSON to this file." };
        var plot = new Option<string?>("--plot") { Description = "Draw ns/op per workload and allocator to this PNG file." };
        var markdown = new Option<string?>("--markdown") { Description = "Write the tables as Markdown to this file (for docs/benchmarks.md)." };

        var command = new Command("bench", "Run the workloads W1-W6 (DESIGN.md §5) on the buddy heaps and on glibc, NativeMemory and mimalloc; print ns/op and ratios.")
        {
            workloads, allocators, runs, quick, json, plot, markdown,
        };
        command.SetAction(result => Run(
            console ?? AnsiConsole.Console,
            result.GetValue(workloads),
            result.GetValue(allocators),
            result.GetValue(runs),
            result.GetValue(quick),
            result.GetValue(json),
            result.GetValue(plot),
            result.GetValue(markdown)));
        return command;
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
            if (jsonPath is not null)
            {
                BenchReport.WriteJson(jsonPath, options, results);
                console.MarkupLine($"wrote [bold]{Markup.Escape(jsonPath)}[/]");
            }

            if (markdownPath is not null)
            {
                BenchReport.WriteMarkdown(markdownPath, options, results);
                console.MarkupLine($"wrote [bold]{Markup.Escape(markdownPath)}[/]");
            }

            if (plotPath is not null)
            {
                BenchPlot.Save(plotPath, results, $"{BenchMachine.Describe()}, median of {runs} runs{(quick ? ", quick scale" : "")}");
                console.MarkupLine($"wrote [bold]{Markup.Escape(plotPath)}[/]");
            }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new BadInputException($"cannot write the output: {e.Message}", e);
        }

        return 0;
    }
}
