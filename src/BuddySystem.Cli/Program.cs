using System.CommandLine;
using BuddySystem.Cli.Commands;

namespace BuddySystem.Cli;

/// <summary>The <c>buddy</c> tool: one subcommand per file in <c>Commands/</c>.</summary>
internal static class Program
{
    private static int Main(string[] args) => Run(args, Console.Error);

    /// <summary>Runs the tool. A command line that does not parse (an unknown command or option, a value outside an
    /// option's accepted names, a missing argument) prints one line to <paramref name="error"/> and returns 2, without
    /// the help text; <c>--help</c> still prints it.</summary>
    internal static int Run(string[] args, TextWriter error)
    {
        var root = new RootCommand("buddy — the rCore tutorial's buddy-system heap in C#: demo, bench, replay and more.");
        root.Subcommands.Add(DemoCommand.Create());
        root.Subcommands.Add(BenchCommand.Create());
        root.Subcommands.Add(ReplayCommand.Create());
        root.Subcommands.Add(MapCommand.Create());
        root.Subcommands.Add(ExploreCommand.Create());
        root.Subcommands.Add(SoakCommand.Create());
        root.Subcommands.Add(StressCommand.Create());
        root.Subcommands.Add(CrashTestCommand.Create());
        root.Subcommands.Add(ShmCommand.Create());
        root.Subcommands.Add(ShmWorkerCommand.Create());
        root.Subcommands.Add(RunCommand.Create());
        ParseResult parsed = root.Parse(args);
        if (parsed.Errors.Count > 0)
        {
            var names = new List<string>();
            for (System.CommandLine.Parsing.SymbolResult? symbol = parsed.CommandResult; symbol is System.CommandLine.Parsing.CommandResult result; symbol = result.Parent)
            {
                names.Insert(0, result.Command == root ? "buddy" : result.Command.Name); // "buddy shm stat" for a subcommand's subcommand
            }

            string command = string.Join(' ', names);
            error.WriteLine($"{command}: {parsed.Errors[0].Message.ReplaceLineEndings(" ").Replace("\t", string.Empty, StringComparison.Ordinal)} (see --help)");
            return 2;
        }

        return parsed.Invoke();
    }
}
