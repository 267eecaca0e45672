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
    /// <summary>Exit code for bad options.</summary>
    internal const int BadInput = 2;

    internal static Command Create(IAnsiConsole? console = null)
    {
        var workloads = new Option<string[]>("--workloads", "-w")
        {
            Description = "Workloads to run, comma-separated or repeated (default: W1,W2,W3,W4,W5,W6).",
            AllowMultipleArgumentsPerToken = true,
        };
        var allocators = new Option<string[]>("--allocators", "-a")
        {
            Description = $"Allocators to run, comma-separated or repeated (default: all). Known: {string.Join(", ", BenchAllocators.All.Select(a => a.Id))}.",
            AllowMultipleArgumentsPerToken = true,
        };
        var runs = new Option<int>("--runs")
        {
            Description = "Timed runs per case; the median is reported.",
            DefaultValueFactory = _ => 5,
        };
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

    internal static int Run(IAnsiConsole console, string[]? workloadNames, string[]? allocatorIds, int runs, bool quick, string? jsonPath, string? plotPath, string? markdownPath = null)
    {
        var workloads = new List<string>();
        foreach (string name in Split(workloadNames))
        {
            string? known = WorkloadCase.Workloads.FirstOrDefault(w => string.Equals(w, name, StringComparison.OrdinalIgnoreCase));
            if (known is null)
            {
                return Fail(console, $"unknown workload '{name}' (known: {string.Join(", ", WorkloadCase.Workloads)})");
            }

            workloads.Add(known);
        }

        var allocators = new List<BenchAllocatorEntry>();
        foreach (string id in Split(allocatorIds))
        {
            BenchAllocatorEntry? entry = BenchAllocators.Find(id);
            if (entry is null)
            {
                return Fail(console, $"unknown allocator '{id}' (known: {string.Join(", ", BenchAllocators.All.Select(a => a.Id))})");
            }

            allocators.Add(entry);
        }

        if (runs < 1)
        {
            return Fail(console, "--runs must be at least 1");
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
            return Fail(console, $"cannot write the output: {e.Message}");
        }

        return 0;
    }

    internal static IEnumerable<string> Split(string[]? values) =>
        (values ?? []).SelectMany(v => v.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries));

    internal static int Fail(IAnsiConsole console, string message)
    {
        console.MarkupLine($"[red]error:[/] {Markup.Escape(message)}");
        return BadInput;
    }
}
