using System.Text.Json;
using BuddySystem.Cli.Bench;
using BuddySystem.Cli.Replay;
using BuddySystem.Cli.Traces;

namespace BuddySystem.Cli.Commands;

/// <summary>
/// <c>buddy replay TRACE</c>: replays an allocation trace (docs/benchmarks.md) on several allocators, checking every block's
/// contents, and reports speed, failures, peaks and the arena footprint.
/// </summary>
internal static class ReplayCommand
{
    private static TimeSpan WarmUp => BenchScale.Full.WarmUp;

    private static readonly string[] s_defaultAllocators = ["buddy-heap", "locked-heap", "glibc", "mimalloc"];

    internal static Command Create(IAnsiConsole? console = null)
    {
        var trace = CommonOptions.Trace("The trace file: 'a <id> <size> <align>', 'f <id>', 'r <id> <newsize>' lines, plain or gzip.");
        var allocators = CommonOptions.Allocators([.. BenchAllocators.Replayable.Select(a => a.Id)], $"An allocator to replay on; repeat for several (default: {string.Join(", ", s_defaultAllocators)}).");
        var heap = CommonOptions.OptionalHeap("Arena size; default the next power of two of twice the trace's peak of live buddy-block bytes, at least 1MiB", HeapRange.Trace);
        var runs = CommonOptions.AtLeast(new Option<int>("--runs") { Description = "Timed passes per allocator; the median is reported.", DefaultValueFactory = _ => 5 }, 1);
        var json = CommonOptions.OutputPath("--json", "Write the results as JSON to this file.", ".json");
        var markdown = CommonOptions.OutputPath("--markdown", "Write the table as Markdown to this file (for docs/benchmarks.md).", ".md");
        var command = new Command("replay", "Replay an allocation trace on several allocators, verifying every block's contents.")
        {
            trace, allocators, heap, runs, json, markdown,
        };
        command.SetAction(result => Run(
            console ?? AnsiConsole.Console,
            result.GetValue(trace)!.FullName,
            result.GetValue(allocators),
            result.GetValue(heap)?.Bytes,
            result.GetValue(runs),
            result.GetValue(json),
            result.GetValue(markdown)));
        return command;
    }

    /// <summary>Replays the trace on each allocator. Bad input (an unknown allocator, a malformed trace, an unwritable
    /// output) throws <see cref="BadInputException"/> or <see cref="TraceFormatException"/>; a block whose contents came back
    /// wrong throws <see cref="ReplayVerificationException"/> (exit 1).</summary>
    internal static int Run(IAnsiConsole console, string tracePath, string[]? allocatorIds, ulong? heapSize, int runs, string? jsonPath, string? markdownPath = null)
    {
        var allocators = new List<BenchAllocatorEntry>();
        foreach (string id in allocatorIds is { Length: > 0 } ? allocatorIds : s_defaultAllocators)
        {
            BenchAllocatorEntry entry = BenchAllocators.Find(id) is { Replays: true } found ? found : throw new BadInputException($"unknown allocator '{id}' (known: {string.Join(", ", BenchAllocators.Replayable.Select(a => a.Id))})");
            if (!allocators.Contains(entry))
            {
                allocators.Add(entry);
            }
        }

        if (heapSize is { } requested)
        {
            HeapRange.Trace.Check(requested);
        }

        if (runs < 1)
        {
            throw new BadInputException("--runs must be at least 1");
        }

        if (!File.Exists(tracePath))
        {
            throw new BadInputException($"trace '{tracePath}' not found");
        }

        CompiledTrace compiled;
        var results = new List<(BenchAllocatorEntry Allocator, ReplayPass Pass)>();
        try
        {
            compiled = null!;
            ulong arena = 0;
            CommandProgress.Start(console, context =>
                {
                    ProgressTask reading = context.AddTask("reading trace", maxValue: 1);
                    reading.IsIndeterminate = true;
                    compiled = CompiledTrace.Compile(TraceReader.Read(tracePath), tracePath, n => reading.Description = $"reading trace: {n:N0} ops");
                    reading.IsIndeterminate = false;
                    reading.Value = 1;
                    arena = heapSize ?? compiled.DefaultHeapSize;
                    foreach (BenchAllocatorEntry allocator in allocators.Where(a => a.Unavailable is null))
                    {
                        double total = (double)compiled.Steps.Length * (runs + 1);
                        ProgressTask task = context.AddTask(allocator.Id, maxValue: Math.Max(total, 1));
                        ReplayPass verified = allocator.Replay(compiled, (nuint)arena, verify: true, done => task.Value = done);

                        // Untimed passes until tiered compilation has promoted what the trace calls rarely (a short
                        // trace's pass takes a few milliseconds, less than the runtime waits before it recompiles).
                        long warmUpStart = Stopwatch.GetTimestamp();
                        while (Stopwatch.GetElapsedTime(warmUpStart) < WarmUp)
                        {
                            allocator.Replay(compiled, (nuint)arena, verify: false, null);
                        }

                        var timed = new List<ReplayPass>();
                        for (int run = 0; run < runs; run++)
                        {
                            timed.Add(allocator.Replay(compiled, (nuint)arena, verify: false, null));
                            task.Value = (double)compiled.Steps.Length * (run + 2);
                        }

                        ReplayPass median = timed.OrderBy(p => p.NsPerOp).ElementAt(timed.Count / 2);
                        results.Add((allocator, verified with { ElapsedTicks = median.ElapsedTicks, Ops = median.Ops }));
                        task.Value = total;
                    }
                }, keep: true);

            heapSize = arena;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or OutOfMemoryException)
        {
            throw new BadInputException($"cannot replay '{tracePath}': {e.Message}", e);
        }

        WriteTable(console, compiled, heapSize.Value, allocators, results);
        try
        {
            ReportFiles.Write(console, jsonPath, path => WriteJson(path, tracePath, compiled, heapSize.Value, allocators, results));
            ReportFiles.Write(console, markdownPath, path => WriteMarkdown(path, tracePath, compiled, heapSize.Value, allocators, results));
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new BadInputException($"cannot write the output: {e.Message}", e);
        }

        return 0;
    }

    private static void WriteTable(IAnsiConsole console, CompiledTrace trace, ulong heapSize, List<BenchAllocatorEntry> allocators, List<(BenchAllocatorEntry Allocator, ReplayPass Pass)> results)
    {
        var table = new Table().Border(TableBorder.Rounded)
            .Title($"replay {Markup.Escape(Path.GetFileName(trace.Source))}: {trace.Steps.Length:N0} ops, arena {ByteSize.Rounded(heapSize)}");
        table.AddColumn("allocator");
        table.AddColumn(new TableColumn("ns/op").RightAligned());
        table.AddColumn(new TableColumn("failed").RightAligned());
        table.AddColumn(new TableColumn("peak requested").RightAligned());
        table.AddColumn(new TableColumn("peak allocated").RightAligned());
        table.AddColumn(new TableColumn("footprint").RightAligned());
        table.AddColumn("verified");
        foreach (BenchAllocatorEntry allocator in allocators)
        {
            if (allocator.Unavailable is { } why)
            {
                table.AddRow(allocator.Id, $"[grey]not available: {Markup.Escape(why)}[/]", "", "", "", "", "");
                continue;
            }

            ReplayPass pass = results.First(r => r.Allocator == allocator).Pass;
            table.AddRow(
                allocator.Id,
                BenchReport.Number(pass.NsPerOp),
                pass.Failed.ToString("N0", CultureInfo.InvariantCulture),
                ByteSize.Rounded(pass.PeakUserBytes),
                pass.PeakAllocatedBytes == 0 ? "n/a" : ByteSize.Rounded(pass.PeakAllocatedBytes),
                allocator.IsArena ? ByteSize.Rounded(pass.FootprintBytes) : "n/a",
                pass.Verified ? "[green]yes[/]" : "no");
        }

        console.Write(table);
        console.MarkupLine($"[grey]trace peak: {ByteSize.Rounded(trace.PeakUserBytes)} requested, {ByteSize.Rounded(trace.PeakBuddyBlockBytes)} in buddy blocks; ns/op is the median of the timed passes (no fills); peaks and footprint come from the verified pass.[/]");
    }

    private static void WriteJson(string path, string tracePath, CompiledTrace trace, ulong heapSize, List<BenchAllocatorEntry> allocators, List<(BenchAllocatorEntry Allocator, ReplayPass Pass)> results)
    {
        using var stream = File.Create(path);
        using var json = new Utf8JsonWriter(stream, new JsonWriterOptions { Indented = true });
        json.WriteStartObject();
        json.WriteString("trace", tracePath);
        json.WriteNumber("ops", trace.Steps.Length);
        json.WriteNumber("heap_size", heapSize);
        json.WriteString("machine", BenchMachine.Describe());
        json.WriteStartArray("results");
        foreach ((BenchAllocatorEntry allocator, ReplayPass pass) in results)
        {
            json.WriteStartObject();
            json.WriteString("allocator", allocator.Id);
            json.WriteNumber("ns_per_op", Math.Round(pass.NsPerOp, 3));
            json.WriteNumber("failed", pass.Failed);
            json.WriteNumber("peak_user_bytes", pass.PeakUserBytes);
            if (pass.PeakAllocatedBytes != 0)
            {
                json.WriteNumber("peak_allocated_bytes", pass.PeakAllocatedBytes);
            }
            else
            {
                json.WriteNull("peak_allocated_bytes");
            }

            if (allocator.IsArena)
            {
                json.WriteNumber("footprint_bytes", pass.FootprintBytes);
            }

            json.WriteBoolean("verified", pass.Verified);
            json.WriteEndObject();
        }

        json.WriteEndArray();
        json.WriteStartObject("unavailable");
        foreach (BenchAllocatorEntry allocator in allocators.Where(a => a.Unavailable is not null))
        {
            json.WriteString(allocator.Id, allocator.Unavailable);
        }

        json.WriteEndObject();
        json.WriteEndObject();
    }

    private static void WriteMarkdown(string path, string tracePath, CompiledTrace trace, ulong heapSize, List<BenchAllocatorEntry> allocators, List<(BenchAllocatorEntry Allocator, ReplayPass Pass)> results)
    {
        var text = new System.Text.StringBuilder();
        text.AppendLine(CultureInfo.InvariantCulture, $"`{tracePath}`: {trace.Steps.Length:N0} operations, arena {ByteSize.Rounded(heapSize)}; trace peak {ByteSize.Rounded(trace.PeakUserBytes)} requested, {ByteSize.Rounded(trace.PeakBuddyBlockBytes)} in buddy blocks. {BenchMachine.Describe()}.");
        text.AppendLine().AppendLine("| allocator | ns/op | failed | peak requested | peak allocated | footprint | verified |").AppendLine("|---|---|---|---|---|---|---|");
        foreach (BenchAllocatorEntry allocator in allocators)
        {
            if (allocator.Unavailable is { } why)
            {
                text.AppendLine(CultureInfo.InvariantCulture, $"| {allocator.Id} | not available: {why} | | | | | |");
                continue;
            }

            ReplayPass pass = results.First(r => r.Allocator == allocator).Pass;
            text.AppendLine(CultureInfo.InvariantCulture, $"| {allocator.Id} | {BenchReport.Number(pass.NsPerOp)} | {pass.Failed:N0} | {ByteSize.Rounded(pass.PeakUserBytes)} | {(pass.PeakAllocatedBytes == 0 ? "n/a" : ByteSize.Rounded(pass.PeakAllocatedBytes))} | {(allocator.IsArena ? ByteSize.Rounded(pass.FootprintBytes) : "n/a")} | {(pass.Verified ? "yes" : "no")} |");
        }

        File.WriteAllText(path, text.ToString());
    }
}
