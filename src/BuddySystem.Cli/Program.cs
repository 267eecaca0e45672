using System.CommandLine.Parsing;
using BuddySystem.Cli.Commands;
using BuddySystem.Cli.Replay;
using BuddySystem.Cli.Traces;

namespace BuddySystem.Cli;

/// <summary>The <c>buddy</c> tool: one subcommand per file in <c>Commands/</c>.</summary>
internal static class Program
{
    private static int Main(string[] args)
    {
        // Spectre takes 80 columns when the output is not a terminal, and wraps a wide table inside its cells ("locked-hea"
        // over "p"); a file or a pipe has no width, so a table keeps its natural one there.
        if (Console.IsOutputRedirected)
        {
            AnsiConsole.Console.Profile.Width = RedirectedWidth;
        }

        return Run(args, Console.Error);
    }

    /// <summary>The width of the terminal Spectre draws to when the output is a file or a pipe.</summary>
    internal const int RedirectedWidth = 400;

    /// <summary>Exit code: the command did what it was asked and every check passed.</summary>
    internal const int Success = 0;

    /// <summary>Exit code: a check failed (a verification, a corruption, an assertion of the demo).</summary>
    internal const int CheckFailed = 1;

    /// <summary>Exit code: bad input (the command line, a trace, a file that cannot be read or written).</summary>
    internal const int BadInput = 2;

    /// <summary>Runs the tool. A command line that does not parse (an unknown command or option, a value outside an
    /// option's accepted names or range, a missing file) prints one line to <paramref name="error"/> and returns 2, without
    /// the help text; <c>--help</c> still prints it. An error while the command runs prints one line too, never a stack
    /// trace: 2 for bad input (<see cref="BadInputException"/>, a malformed trace, an unreadable or unwritable file), 1 for
    /// a failed check or an unexpected error (its type named).</summary>
    internal static int Run(string[] args, TextWriter error)
    {
        // The order of --help. crash-test, shm-worker, shm-bench-worker and bench-pool-run are hidden: child processes of
        // the death tests, shm soak, shm bench and bench -w pool.
        var root = new RootCommand("buddy — the rCore tutorial's buddy-system heap in C#: demo, bench, replay and more.")
        {
            DemoCommand.Create(), BenchCommand.Create(), ReplayCommand.Create(), MapCommand.Create(), ExploreCommand.Create(),
            SoakCommand.Create(), StressCommand.Create(), CrashTestCommand.Create(),
            ShmCommand.Create(),
            ShmWorkerCommand.Create(), ShmBenchWorkerCommand.Create(), BenchPoolRunCommand.Create(),
            RunCommand.Create(),
        };
        ParseResult parsed = root.Parse(args);
        var names = new List<string>();
        for (SymbolResult? symbol = parsed.CommandResult; symbol is CommandResult result; symbol = result.Parent)
        {
            names.Insert(0, result.Command == root ? "buddy" : result.Command.Name); // "buddy shm stat" for a subcommand's subcommand
        }

        string command = string.Join(' ', names);
        if (parsed.Errors.Count > 0)
        {
            error.WriteLine($"{command}: {OneLine(MissingCommand(parsed, command) ?? parsed.Errors[0].Message)} (see --help)");
            return BadInput;
        }

        try
        {
            return parsed.Invoke(new InvocationConfiguration { EnableDefaultExceptionHandler = false, Error = error });
        }
        catch (Exception e) when (e is BadInputException or TraceFormatException or InvalidDataException or IOException or UnauthorizedAccessException or ArgumentException or OutOfMemoryException)
        {
            error.WriteLine($"{command}: {OneLine(e.Message)}");
            return BadInput;
        }
        catch (Exception e) when (e is ReplayVerificationException or SoakFailureException or HeapCorruptionException)
        {
            error.WriteLine($"{command}: check failed: {OneLine(e.Message)}");
            return CheckFailed;
        }
        catch (Exception e)
        {
            error.WriteLine($"{command}: internal error ({e.GetType().Name}): {OneLine(e.Message)}");
            return CheckFailed;
        }
    }

    /// <summary>For a command that only groups others (<c>buddy</c>, <c>buddy shm</c>), the line that names the word
    /// given in place of one of them and lists them, rather than the parser's "Required command was not provided.";
    /// null for any other error.</summary>
    private static string? MissingCommand(ParseResult parsed, string name)
    {
        Command group = parsed.CommandResult.Command;
        if (group.Subcommands.Count == 0 || group.Action is not null)
        {
            return null;
        }

        string commands = string.Join(", ", group.Subcommands.Where(c => !c.Hidden).Select(c => c.Name));
        return parsed.UnmatchedTokens.FirstOrDefault() switch
        {
            null => $"give a command: {commands}.",
            string option when option.StartsWith('-') => $"'{option}' is not an option of {name}; give a command first: {commands}.",
            string word => $"'{word}' is not a {name} command; the commands: {commands}.",
        };
    }

    private static string OneLine(string message) => message.ReplaceLineEndings(" ").Replace("\t", string.Empty, StringComparison.Ordinal);
}
