using System.Text.Json;

namespace BuddySystem.Cli.Bench;

/// <summary>Renders bench results: one terminal table per workload, and the JSON file.</summary>
internal static partial class BenchReport
{
    /// <summary>The reference for ratios: for the pool workload <c>array-pool</c>; otherwise mimalloc when it ran for the case, otherwise glibc.</summary>
    public static BenchResult? Reference(IReadOnlyList<BenchResult> results, string workload, string param) =>
        workload == "pool" ? results.FirstOrDefault(r => r.Workload == workload && r.Param == param && r.Allocator == "array-pool") :
        results.FirstOrDefault(r => r.Workload == workload && r.Param == param && r.Allocator == "mimalloc")
        ?? results.FirstOrDefault(r => r.Workload == workload && r.Param == param && r.Allocator == "glibc");

    /// <summary>Writes a table per workload: rows are allocators, a column per parameter with ns/op and the ratio.</summary>
    public static void WriteTables(IAnsiConsole console, BenchOptions options, IReadOnlyList<BenchResult> results)
    {
        foreach (string workload in options.Workloads)
        {
            var cases = WorkloadCase.For(workload).ToList();
            console.MarkupLine($"[bold]{workload}[/]: {Markup.Escape(Caption(workload))}");
            var table = new Table().Border(TableBorder.Rounded);
            table.AddColumn("allocator");
            foreach (WorkloadCase c in cases)
            {
                string header = c.Param.Length == 0 ? (workload == "W6" ? "ns/op" : "ns/op (ratio)") : $"{ParamName(workload)}={c.Param}";
                table.AddColumn(new TableColumn(Markup.Escape(header)).RightAligned());
            }

            foreach (string column in TrailingColumns(workload))
            {
                table.AddColumn(new TableColumn(column).RightAligned());
            }

            foreach (BenchAllocatorEntry allocator in options.Allocators)
            {
                if (!allocator.Runs(workload))
                {
                    continue;
                }

                var cells = new List<string> { allocator.Id };
                if (allocator.Unavailable is { } why)
                {
                    cells.Add($"[grey]not available: {Markup.Escape(why)}[/]");
                    while (cells.Count < table.Columns.Count)
                    {
                        cells.Add("");
                    }

                    table.AddRow(cells.ToArray());
                    continue;
                }

                cells.AddRange(ResultCells(results, workload, cases, allocator.Id));
                table.AddRow(cells.ToArray());
            }

            console.Write(table);
        }

        string referenceId = results.Any(r => r.Allocator == "mimalloc") ? "mimalloc" : "glibc";
        console.MarkupLine($"[grey]cells: ns/op (ratio = ns/op ÷ {referenceId}'s ns/op for the same case; pool: ÷ array-pool's); lower is faster. {(options.Runs == 1 ? "One run" : $"Median of {options.Runs} runs")}; W6 is one run of {options.Scale.W6Rounds} rounds.[/]");
    }

    /// <summary>Writes <c>{"machine", "runtime", "results": [...]}</c> (docs/benchmarks.md, issue 4), plus the unavailable allocators.</summary>
    public static void WriteJson(string path, BenchOptions options, IReadOnlyList<BenchResult> results) =>
        WriteJson(path, ReferenceEquals(options.Scale, BenchScale.Quick), options.Runs, results,
            options.Allocators.Where(a => a.Unavailable is not null).Select(a => (a.Id, a.Unavailable!)));

    /// <summary>The JSON of <see cref="WriteJson(string, BenchOptions, IReadOnlyList{BenchResult})"/> for any results (the
    /// workloads' and the programs'); <paramref name="unavailable"/> names what could not run and why.</summary>
    public static void WriteJson(string path, bool quick, int runs, IReadOnlyList<BenchResult> results, IEnumerable<(string Id, string Why)> unavailable)
    {
        using var stream = File.Create(path);
        using var json = new Utf8JsonWriter(stream, new JsonWriterOptions { Indented = true });
        json.WriteStartObject();
        json.WriteString("machine", BenchMachine.Describe());
        json.WriteString("runtime", BenchMachine.Runtime);
        json.WriteString("load", BenchMachine.Load);
        json.WriteBoolean("quick", quick);
        json.WriteNumber("runs", runs);
        json.WriteStartArray("results");
        foreach (BenchResult r in results)
        {
            json.WriteStartObject();
            json.WriteString("workload", r.Workload);
            json.WriteString("param", r.Param);
            json.WriteString("allocator", r.Allocator);
            json.WriteNumber("ns_per_op", Math.Round(r.NsPerOp, 3));
            json.WriteNumber("ops", r.Ops);
            json.WriteNumber("failed", r.Failed);
            if (r.OpsPerSec is { } opsPerSec)
            {
                json.WriteNumber("ops_per_sec", Math.Round(opsPerSec));
            }

            if (r.GcBytesPerOp is { } gcBytes)
            {
                json.WriteNumber("gc_bytes_per_op", Math.Round(gcBytes, 3));
            }

            if (r.PeakRssBytes is { } peakRss)
            {
                json.WriteNumber("peak_rss_bytes", peakRss);
            }

            if (r.Efficiency is { } efficiency)
            {
                json.WriteNumber("efficiency", Math.Round(efficiency, 4));
            }

            if (r.MaxRssBytes is { } rss)
            {
                json.WriteNumber("wall_seconds", Math.Round(r.NsPerOp / 1e9, 4));
                json.WriteNumber("max_rss_bytes", rss);
                if (r.CpuNs is { } cpu)
                {
                    json.WriteNumber("cpu_seconds", Math.Round(cpu / 1e9, 4));
                }
            }

            if (r.SameOutput is { } same)
            {
                json.WriteBoolean("same_output", same);
            }

            json.WriteEndObject();
        }

        json.WriteEndArray();
        json.WriteStartObject("unavailable");
        foreach (var (id, why) in unavailable)
        {
            json.WriteString(id, why);
        }

        json.WriteEndObject();
        json.WriteEndObject();
    }

    /// <summary>Writes the tables as Markdown (for docs/benchmarks.md): a table per workload, ns/op with the ratio.</summary>
    public static void WriteMarkdown(string path, BenchOptions options, IReadOnlyList<BenchResult> results)
    {
        var text = new System.Text.StringBuilder();
        string referenceId = results.Any(r => r.Allocator == "mimalloc") ? "mimalloc" : "glibc";
        text.AppendLine(CultureInfo.InvariantCulture, $"Machine: {BenchMachine.Describe()}; {BenchMachine.Runtime}; {(ReferenceEquals(options.Scale, BenchScale.Quick) ? "quick" : "full")} scale, median of {options.Runs} runs. Cells: ns/op (ratio to {referenceId} in the same run, pool rows to array-pool; lower is faster); load {BenchMachine.Load}.");
        foreach (string workload in options.Workloads)
        {
            var cases = WorkloadCase.For(workload).ToList();
            text.AppendLine().AppendLine(CultureInfo.InvariantCulture, $"**{workload}**: {Caption(workload)}").AppendLine();
            var header = new List<string> { "allocator" };
            header.AddRange(cases.Select(c => c.Param.Length == 0 ? "ns/op" : $"{ParamName(workload)} = {c.Param}"));
            header.AddRange(TrailingColumns(workload));
            text.AppendLine("| " + string.Join(" | ", header) + " |");
            text.AppendLine("|" + string.Concat(Enumerable.Repeat("---|", header.Count)));
            foreach (BenchAllocatorEntry allocator in options.Allocators.Where(a => a.Runs(workload)))
            {
                var cells = new List<string> { allocator.Id };
                if (allocator.Unavailable is { } why)
                {
                    cells.Add($"not available: {why}");
                    text.AppendLine("| " + string.Join(" | ", cells) + " |");
                    continue;
                }

                cells.AddRange(ResultCells(results, workload, cases, allocator.Id));
                text.AppendLine("| " + string.Join(" | ", cells) + " |");
            }
        }

        File.WriteAllText(path, text.ToString());
    }

    // The columns after the cases' that the workload adds, then "failed": one list for the terminal and the Markdown, in
    // the order ResultCells fills them.
    private static List<string> TrailingColumns(string workload)
    {
        var columns = new List<string>();
        if (workload is "W5" or "pool")
        {
            columns.Add("Mops/s 1 / 2 / 4 threads (scaling 2:1, 4:2)");
        }

        if (workload == "pool")
        {
            columns.Add("GC B/op 1 / 2 / 4");
            columns.Add("peak RSS MiB 1 / 2 / 4");
        }

        if (workload == "W6")
        {
            columns.Add("efficiency");
        }

        columns.Add("failed");
        return columns;
    }

    // An allocator's cells after its name: ns/op with the ratio per case (W6: ns/op alone), then the TrailingColumns.
    private static List<string> ResultCells(IReadOnlyList<BenchResult> results, string workload, List<WorkloadCase> cases, string allocator)
    {
        var rows = cases.Select(c => results.FirstOrDefault(r => r.Workload == workload && r.Param == c.Param && r.Allocator == allocator)).ToList();
        var cells = rows.Select(row => row is null ? "" : workload == "W6" ? Number(row.NsPerOp) : $"{Number(row.NsPerOp)} ({Ratio(row, Reference(results, row.Workload, row.Param))})").ToList();
        if (workload is "W5" or "pool")
        {
            cells.Add(Throughput(rows));
        }

        if (workload == "pool")
        {
            cells.Add(GcBytes(rows));
            cells.Add(PeakRss(rows));
        }

        if (workload == "W6")
        {
            cells.Add(rows[0]?.Efficiency is { } e ? e.ToString("P1", CultureInfo.InvariantCulture) : "-");
        }

        cells.Add(rows.Sum(r => r?.Failed ?? 0).ToString("N0", CultureInfo.InvariantCulture));
        return cells;
    }

    // W5: total Mops/s per thread count, then the scaling of each count against the one before (2:1, 4:2).
    private static string Throughput(List<BenchResult?> rows)
    {
        string mops = string.Join(" / ", rows.Select(r => r?.OpsPerSec is { } ops ? (ops / 1e6).ToString("0.0", CultureInfo.InvariantCulture) : "-"));
        var scaling = new List<string>();
        for (int i = 1; i < rows.Count; i++)
        {
            if (rows[i - 1]?.OpsPerSec is { } before && before > 0 && rows[i]?.OpsPerSec is { } after)
            {
                scaling.Add((after / before).ToString("0.00", CultureInfo.InvariantCulture) + "×");
            }
        }

        return scaling.Count == 0 ? mops : $"{mops} ({string.Join(", ", scaling)})";
    }

    // pool: GC bytes per operation for each thread count.
    private static string GcBytes(List<BenchResult?> rows) =>
        string.Join(" / ", rows.Select(r => r?.GcBytesPerOp is { } b ? Number(b) : "-"));

    // pool: the peak RSS of each thread count's median run, in MiB.
    private static string PeakRss(List<BenchResult?> rows) =>
        string.Join(" / ", rows.Select(r => r?.PeakRssBytes is { } b ? (b / 1048576.0).ToString("0", CultureInfo.InvariantCulture) : "-"));

    /// <summary>"12.3", "1,234", "0.85".</summary>
    public static string Number(double value) =>
        double.IsNaN(value) ? "-" : value >= 1000 ? value.ToString("N0", CultureInfo.InvariantCulture) : value.ToString(value >= 100 ? "0" : value >= 10 ? "0.0" : "0.00", CultureInfo.InvariantCulture);

    private static string Ratio(BenchResult row, BenchResult? reference) =>
        reference is null || reference.NsPerOp <= 0 ? "-" : $"{(row.NsPerOp / reference.NsPerOp).ToString("0.00", CultureInfo.InvariantCulture)}×";

    private static string ParamName(string workload) => workload switch
    {
        "W2" => "size",
        "W4" => "n",
        "W5" or "pool" => "threads",
        _ => "",
    };

    private static string Caption(string workload) => workload switch
    {
        "W1" => "allocate 16 B and free it at once, 10M times; ns per pair",
        "W2" => "allocate 8 MiB / size blocks, free in order; ns per pair",
        "W3" => "random sizes 8 B..64 KiB, live set ≤ 10 000; ns per op",
        "W4" => "free n × 16 B blocks in random order; ns per free",
        "W5" => "W3 on 1, 2 and 4 threads sharing one heap of 32 MiB × threads; ns per op (wall)",
        "W6" => "heap efficiency until the first failed allocation (talc's method)",
        "pool" => "rent pool-mix buffers (256 B..1 MiB) and return them, 1 in 8 returns on another thread; ns per rent+return (wall), each run in its own process",
        _ => "",
    };
}
