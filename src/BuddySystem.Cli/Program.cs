using System.CommandLine;
using BuddySystem.Cli.Commands;

namespace BuddySystem.Cli;

/// <summary>The <c>buddy</c> tool: one subcommand per file in <c>Commands/</c>.</summary>
internal static class Program
{
    private static int Main(string[] args)
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
        root.Subcommands.Add(ShmWorkerCommand.Create());
        root.Subcommands.Add(RunCommand.Create());
        return root.Parse(args).Invoke();
    }
}
