using BuddySystem.Cli.Commands;
using BuddySystem.Cli.Text;
using Spectre.Console;

namespace BuddySystem.Tests;

/// <summary>The long commands draw progress only on a terminal; redirected, they print the results alone.</summary>
public sealed class CommandProgressTests : IDisposable
{
    private readonly string _directory = Directory.CreateTempSubdirectory("buddy-progress-").FullName;

    public void Dispose() => Directory.Delete(_directory, recursive: true);

    [Fact]
    public void IsShown_InteractiveConsoleOverAStringWriter_IsFalse()
    {
        IAnsiConsole console = AnsiConsole.Create(new AnsiConsoleSettings { Interactive = InteractionSupport.Yes, Ansi = AnsiSupport.Yes, Out = new AnsiConsoleOutput(new StringWriter()) });

        Assert.False(CommandProgress.IsShown(console));
    }

    [Fact]
    public void Start_NotATerminal_DrawsNothingAndReturnsTheResult()
    {
        var output = new StringWriter();
        IAnsiConsole console = BenchTestConsole.Create(output);

        int result = CommandProgress.Start(console, context =>
        {
            ProgressTask task = context.AddTask("counting", maxValue: 10);
            task.Increment(10);
            return 42;
        }, keep: true);

        Assert.Equal(42, result);
        Assert.Equal(string.Empty, output.ToString());
    }

    [Fact]
    public void Replay_NotATerminal_PrintsTheTableButNoProgress()
    {
        string trace = Path.Combine(_directory, "t.trace");
        File.WriteAllText(trace, "a 1 100 16\nf 1\n");
        var output = new StringWriter();

        Assert.Equal(0, ReplayCommand.Run(BenchTestConsole.Create(output), trace, ["buddy-heap"], null, 1, null));
        Assert.Contains("replay t.trace", output.ToString(), StringComparison.Ordinal);
        Assert.DoesNotContain("reading trace", output.ToString(), StringComparison.Ordinal);
        Assert.DoesNotContain("%", output.ToString(), StringComparison.Ordinal);
    }

    [Fact]
    public void Track_PassesEveryItemThroughAndFinishesTheTask()
    {
        CommandProgress.Start(BenchTestConsole.Create(new StringWriter()), context =>
        {
            ProgressTask task = context.AddTask("items", maxValue: 10_000);
            Assert.Equal(Enumerable.Range(0, 10_000), CommandProgress.Track(Enumerable.Range(0, 10_000), task));
            Assert.Equal(10_000, task.Value);
        });
    }
}
