using System.Text;
using System.Text.Json;

namespace BuddySystem.Cli.Bench.Programs;

/// <summary>
/// <c>buddy bench --misuse</c> (docs/benchmarks.md, issue 22): 14 heap-misuse cases, each run by the small C program
/// <c>misuse.c</c> in a child process under each malloc (<c>LD_PRELOAD</c>), classified by what the process did:
/// stopped with a message (naming the misused address or not), crashed on a signal, hung, or went on as if nothing
/// happened.
/// </summary>
internal static class MisuseBattery
{
    /// <summary>The cases, in table order, with what each does (the names are misuse.c's arguments).</summary>
    public static IReadOnlyList<(string Name, string Description)> Cases { get; } =
    [
        ("double-free-32", "a 32 B block freed twice"),
        ("double-free-48-after-16", "a 48 B block freed, then 16 others of its size, then it again"),
        ("double-free-5000", "a 5 000 B block freed twice"),
        ("double-free-1mib", "a 1 MiB block freed twice"),
        ("interior-free", "free of a 64 B block's address + 16"),
        ("misaligned-free", "free of a 64 B block's address + 1"),
        ("interior-free-1mib", "free of a 1 MiB block's address + 64 KiB"),
        ("stack-free", "free of a stack array"),
        ("foreign-mmap-free", "free of a page from mmap"),
        ("realloc-freed", "realloc of a freed 64 B block"),
        ("racing-free", "two threads free one 64 B block at once (200 rounds)"),
        ("write-after-free", "a freed 64 B block written over, then 64 allocations and frees of its size"),
        ("write-after-free-exit", "a freed 64 B block written over, then 8 other frees, then _exit (no exit handler runs)"),
        ("overflow-16", "16 bytes written past a 64 B request, then it and its neighbour freed"),
        ("underflow-16", "16 bytes written before a 64 B block, then it and its neighbour freed"),
    ];

    /// <summary>What a case did under one allocator.</summary>
    public enum Verdict
    {
        /// <summary>The allocator stopped the process (SIGABRT) with a message that names the misused address.</summary>
        StoppedNamingTheAddress,

        /// <summary>The allocator stopped the process (SIGABRT) with a message that does not name the address.</summary>
        Stopped,

        /// <summary>The process died on another signal (or on SIGABRT with no message).</summary>
        Crashed,

        /// <summary>The process hung until the case's 10 s alarm.</summary>
        Hung,

        /// <summary>The process went on and exited as if nothing happened.</summary>
        Missed,
    }

    /// <summary>One case under one allocator.</summary>
    /// <param name="Case">The case's name.</param>
    /// <param name="Allocator">The allocator's id.</param>
    /// <param name="Verdict">What happened.</param>
    /// <param name="ExitCode">The exit code, or 128 + the signal.</param>
    /// <param name="Message">The first line on standard error (empty when none).</param>
    public sealed record Outcome(string Case, string Allocator, Verdict Verdict, int ExitCode, string Message);

    /// <summary>Runs every case under every available allocator in <paramref name="folder"/>.</summary>
    /// <exception cref="InvalidOperationException">gcc is missing or a child cannot be started.</exception>
    public static List<Outcome> Run(IReadOnlyList<ProgramAllocator> allocators, string folder, IAnsiConsole console)
    {
        string program = ProgramSet.CompileMisuse(folder);
        string launcher = ProgramSet.CompileLauncher(folder);
        Dictionary<string, string> environment = ProgramSet.CurrentEnvironment();
        // glibc writes its messages to the terminal unless told to use stderr.
        environment["LIBC_FATAL_STDERR_"] = "1";
        var ready = allocators.Where(a => a.Unavailable is null).ToList();
        var outcomes = new List<Outcome>();
        CommandProgress.Start(console, context =>
        {
            ProgressTask task = context.AddTask("misuse", maxValue: Math.Max(Cases.Count * ready.Count, 1));
            foreach (var (name, _) in Cases)
            {
                foreach (ProgramAllocator allocator in ready)
                {
                    task.Description = $"{name} · {allocator.Id}";
                    outcomes.Add(RunCase(launcher, program, name, allocator, environment, folder));
                    task.Increment(1);
                }
            }

            task.Description = "misuse";
        }, keep: true);
        return outcomes;
    }

    private static Outcome RunCase(string launcher, string program, string name, ProgramAllocator allocator, Dictionary<string, string> environment, string folder)
    {
        var variables = new Dictionary<string, string>(environment, StringComparer.Ordinal);
        foreach (var (key, value) in allocator.Environment)
        {
            variables[key] = value;
        }

        string output = Path.Combine(folder, "misuse.out");
        string error = Path.Combine(folder, "misuse.err");
        ProgramSpawn.Outcome run = ProgramSpawn.Run(launcher, allocator.Preload, [program, name], variables, folder, output, error);
        string stdout = File.ReadAllText(output);
        string message = File.ReadAllLines(error).Select(l => l.Trim()).FirstOrDefault(l => l.Length != 0) ?? "";
        string? address = stdout.Split('\n').FirstOrDefault(l => l.StartsWith("address ", StringComparison.Ordinal))?["address ".Length..].Trim();
        const int SigAbrt = 128 + 6, SigAlrm = 128 + 14;
        Verdict verdict = run.ExitCode switch
        {
            0 when stdout.Contains("survived", StringComparison.Ordinal) => Verdict.Missed,
            SigAbrt when message.Length != 0 => address is not null && NamesAddress(message, address) ? Verdict.StoppedNamingTheAddress : Verdict.Stopped,
            SigAlrm => Verdict.Hung,
            _ => Verdict.Crashed,
        };
        return new Outcome(name, allocator.Id, verdict, run.ExitCode, message);
    }

    // %p prints 0x7f...; allocators print the same digits, some with leading zeros or in upper case.
    private static bool NamesAddress(string message, string address)
    {
        string digits = address.StartsWith("0x", StringComparison.OrdinalIgnoreCase) ? address[2..].TrimStart('0') : address;
        return digits.Length != 0 && message.Contains(digits, StringComparison.OrdinalIgnoreCase);
    }

    /// <summary>A table cell: short words for the verdict.</summary>
    public static string Cell(Outcome outcome) => outcome.Verdict switch
    {
        Verdict.StoppedNamingTheAddress => "stopped, names it",
        Verdict.Stopped => "stopped",
        Verdict.Crashed => $"crashed ({Signal(outcome.ExitCode)})",
        Verdict.Hung => "hung",
        _ => "missed",
    };

    private static string Signal(int exitCode) => exitCode switch
    {
        128 + 6 => "SIGABRT, no message",
        128 + 7 => "SIGBUS",
        128 + 11 => "SIGSEGV",
        > 128 => $"signal {exitCode - 128}",
        _ => $"exit {exitCode}",
    };

    /// <summary>The table: a row per case, a column per allocator, and a last row counting the cases each stopped with a message.</summary>
    public static List<string[]> Rows(IReadOnlyList<ProgramAllocator> allocators, IReadOnlyList<Outcome> outcomes, out string[] header)
    {
        var ran = allocators.Where(a => outcomes.Any(o => o.Allocator == a.Id)).ToList();
        header = ["case", .. ran.Select(a => a.Id)];
        var rows = new List<string[]>();
        foreach (var (name, _) in Cases)
        {
            rows.Add([name, .. ran.Select(a => outcomes.FirstOrDefault(o => o.Case == name && o.Allocator == a.Id) is { } o ? Cell(o) : "-")]);
        }

        rows.Add(["stopped with a message", .. ran.Select(a =>
            string.Create(CultureInfo.InvariantCulture, $"{outcomes.Count(o => o.Allocator == a.Id && o.Verdict is Verdict.Stopped or Verdict.StoppedNamingTheAddress)} of {Cases.Count}"))]);
        return rows;
    }

    /// <summary>Prints the table and the notes of allocators that did not run.</summary>
    public static void WriteTable(IAnsiConsole console, IReadOnlyList<ProgramAllocator> allocators, IReadOnlyList<Outcome> outcomes)
    {
        console.MarkupLine("[bold]misuse[/]: each case in a child process under each malloc; what the process did");
        List<string[]> rows = Rows(allocators, outcomes, out string[] header);
        var table = new Table().Border(TableBorder.Rounded);
        foreach (string column in header)
        {
            table.AddColumn(Markup.Escape(column));
        }

        foreach (string[] row in rows)
        {
            table.AddRow(row.Select(cell => cell.StartsWith("stopped", StringComparison.Ordinal) ? $"[green]{Markup.Escape(cell)}[/]" : cell == "missed" ? $"[red]{Markup.Escape(cell)}[/]" : Markup.Escape(cell)).ToArray());
        }

        console.Write(table);
        foreach (ProgramAllocator missing in allocators.Where(a => a.Unavailable is not null))
        {
            console.MarkupLine($"[yellow]{Markup.Escape(missing.Id)}: not available: {Markup.Escape(missing.Unavailable!)}; the run goes on without it.[/]");
        }

        console.MarkupLine("[grey]stopped, names it = SIGABRT with a message naming the misused address; stopped = with a message; crashed = another signal; missed = the program went on as if nothing happened.[/]");
    }

    /// <summary>The table as Markdown, with the cases described and the machine named.</summary>
    public static void WriteMarkdown(string path, IReadOnlyList<ProgramAllocator> allocators, IReadOnlyList<Outcome> outcomes)
    {
        List<string[]> rows = Rows(allocators, outcomes, out string[] header);
        var text = new StringBuilder();
        text.AppendLine(CultureInfo.InvariantCulture, $"Machine: {BenchMachine.Describe()}; load {BenchMachine.Load}. Each case in a child process (`misuse.c`), under each malloc through `LD_PRELOAD`.");
        text.AppendLine();
        text.AppendLine("| " + string.Join(" | ", header) + " |");
        text.AppendLine("|" + string.Concat(header.Select(_ => "---|")));
        foreach (string[] row in rows)
        {
            text.AppendLine("| " + string.Join(" | ", row) + " |");
        }

        text.AppendLine();
        foreach (var (name, description) in Cases)
        {
            text.AppendLine(CultureInfo.InvariantCulture, $"- `{name}`: {description}");
        }

        foreach (ProgramAllocator missing in allocators.Where(a => a.Unavailable is not null))
        {
            text.AppendLine(CultureInfo.InvariantCulture, $"- {missing.Id}: not available: {missing.Unavailable}");
        }

        File.WriteAllText(path, text.ToString());
    }

    /// <summary>Every outcome as JSON: case, allocator, verdict, exit code and the message.</summary>
    public static void WriteJson(string path, IReadOnlyList<ProgramAllocator> allocators, IReadOnlyList<Outcome> outcomes)
    {
        using FileStream file = File.Create(path);
        using var json = new Utf8JsonWriter(file, new JsonWriterOptions { Indented = true });
        json.WriteStartObject();
        json.WriteString("machine", BenchMachine.Describe());
        json.WriteString("load", BenchMachine.Load);
        json.WriteStartArray("results");
        foreach (Outcome outcome in outcomes)
        {
            json.WriteStartObject();
            json.WriteString("case", outcome.Case);
            json.WriteString("allocator", outcome.Allocator);
            json.WriteString("verdict", outcome.Verdict.ToString());
            json.WriteNumber("exitCode", outcome.ExitCode);
            json.WriteString("message", outcome.Message);
            json.WriteEndObject();
        }

        json.WriteEndArray();
        json.WriteStartArray("unavailable");
        foreach (ProgramAllocator missing in allocators.Where(a => a.Unavailable is not null))
        {
            json.WriteStartObject();
            json.WriteString("allocator", missing.Id);
            json.WriteString("why", missing.Unavailable);
            json.WriteEndObject();
        }

        json.WriteEndArray();
        json.WriteEndObject();
    }
}
