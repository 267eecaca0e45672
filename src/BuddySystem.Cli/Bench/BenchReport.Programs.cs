using System.Text;
using BuddySystem.Cli.Bench.Programs;

namespace BuddySystem.Cli.Bench;

internal static partial class BenchReport
{
    /// <summary>The column heads of the programs table, shared by the terminal and Markdown.</summary>
    private static readonly string[] s_programColumns =
        ["program", "allocator", "wall s", "× mimalloc", "× glibc", "cpu s", "× mimalloc", "× glibc", "max RSS", "× mimalloc", "× glibc", "output"];

    /// <summary>Workload P's table: a row per program and allocator with wall time, CPU time, peak RSS, their ratios to mimalloc and
    /// glibc from the same run, and whether the output matched glibc's; unavailable programs and allocators are listed.</summary>
    public static void WriteProgramTables(IAnsiConsole console, IReadOnlyList<BenchProgram> programs, IReadOnlyList<ProgramAllocator> allocators, IReadOnlyList<BenchResult> results, int runs)
    {
        console.MarkupLine($"[bold]{ProgramBench.Workload}[/]: real programs on each malloc (LD_PRELOAD); wall time, CPU time (user + system) and peak RSS, median of {runs} run{(runs == 1 ? "" : "s")}");
        var table = new Table().Border(TableBorder.Rounded);
        foreach (string column in s_programColumns)
        {
            table.AddColumn(new TableColumn(Markup.Escape(column)) { Alignment = column is "program" or "allocator" or "output" ? Justify.Left : Justify.Right });
        }

        foreach (string[] row in ProgramRows(programs, allocators, results))
        {
            table.AddRow(row.Select((cell, i) => i == s_programColumns.Length - 1 && cell != "same" ? $"[red]{Markup.Escape(cell)}[/]" : Markup.Escape(cell)).ToArray());
        }

        console.Write(table);
        foreach (string note in ProgramNotes(programs, allocators))
        {
            console.MarkupLine($"[yellow]{Markup.Escape(note)}[/]");
        }

        console.MarkupLine("[grey]× = this allocator's figure ÷ mimalloc's (or glibc's) for the same program in the same run; lower is better. output: same = every run exited 0 with glibc's bytes on stdout.[/]");
    }

    /// <summary>Workload P's table as Markdown (for docs/benchmarks.md), with the machine, the load and the scale.</summary>
    public static void WriteProgramMarkdown(string path, IReadOnlyList<BenchProgram> programs, IReadOnlyList<ProgramAllocator> allocators, IReadOnlyList<BenchResult> results, int runs, bool quick)
    {
        var text = new StringBuilder();
        text.AppendLine(CultureInfo.InvariantCulture, $"Machine: {BenchMachine.Describe()}; load {BenchMachine.Load}; {(quick ? "quick" : "full")} scale, median of {runs} runs. × = ratio to mimalloc (or glibc) for the same program in the same run; lower is better.");
        text.AppendLine();
        text.AppendLine("| " + string.Join(" | ", s_programColumns) + " |");
        text.AppendLine("|" + string.Concat(s_programColumns.Select(c => c is "program" or "allocator" or "output" ? "---|" : "---:|")));
        foreach (string[] row in ProgramRows(programs, allocators, results))
        {
            text.AppendLine("| " + string.Join(" | ", row) + " |");
        }

        text.AppendLine();
        foreach (BenchProgram program in programs.Where(p => p.Unavailable is null))
        {
            text.AppendLine(CultureInfo.InvariantCulture, $"- `{program.Name}`: {program.Description}");
        }

        foreach (string note in ProgramNotes(programs, allocators))
        {
            text.AppendLine(CultureInfo.InvariantCulture, $"- {note}");
        }

        File.WriteAllText(path, text.ToString());
    }

    private static IEnumerable<string[]> ProgramRows(IReadOnlyList<BenchProgram> programs, IReadOnlyList<ProgramAllocator> allocators, IReadOnlyList<BenchResult> results)
    {
        foreach (BenchProgram program in programs)
        {
            BenchResult? mimalloc = results.FirstOrDefault(r => r.Param == program.Name && r.Allocator == "mimalloc");
            BenchResult? glibc = results.FirstOrDefault(r => r.Param == program.Name && r.Allocator == "glibc");
            foreach (ProgramAllocator allocator in allocators)
            {
                BenchResult? r = results.FirstOrDefault(x => x.Param == program.Name && x.Allocator == allocator.Id);
                if (r is null)
                {
                    continue;
                }

                yield return
                [
                    program.Name,
                    allocator.Id,
                    (r.NsPerOp / 1e9).ToString("0.000", CultureInfo.InvariantCulture),
                    TimeRatio(r, mimalloc),
                    TimeRatio(r, glibc),
                    ((r.CpuNs ?? 0) / 1e9).ToString("0.000", CultureInfo.InvariantCulture),
                    CpuRatio(r, mimalloc),
                    CpuRatio(r, glibc),
                    ByteSize.Rounded((ulong)(r.MaxRssBytes ?? 0)),
                    RssRatio(r, mimalloc),
                    RssRatio(r, glibc),
                    r.SameOutput == true ? "same" : r.Failed > 0 ? $"DIFFERS ({r.Failed} non-zero exits)" : "DIFFERS",
                ];
            }
        }
    }

    private static IEnumerable<string> ProgramNotes(IReadOnlyList<BenchProgram> programs, IReadOnlyList<ProgramAllocator> allocators) =>
        programs.Where(p => p.Unavailable is not null).Select(p => $"{p.Name}: not run: {p.Unavailable}")
            .Concat(allocators.Where(a => a.Unavailable is not null).Select(a => $"{a.Id}: not available: {a.Unavailable}; the run goes on without it."));

    private static string TimeRatio(BenchResult row, BenchResult? reference) =>
        reference is null || reference.NsPerOp <= 0 ? "-" : $"{(row.NsPerOp / reference.NsPerOp).ToString("0.00", CultureInfo.InvariantCulture)}×";

    private static string CpuRatio(BenchResult row, BenchResult? reference) =>
        reference?.CpuNs is not { } cpu || cpu <= 0 ? "-" : $"{((row.CpuNs ?? 0) / cpu).ToString("0.00", CultureInfo.InvariantCulture)}×";

    private static string RssRatio(BenchResult row, BenchResult? reference) =>
        reference?.MaxRssBytes is not { } peak || peak <= 0 ? "-" : $"{((double)(row.MaxRssBytes ?? 0) / peak).ToString("0.00", CultureInfo.InvariantCulture)}×";
}
