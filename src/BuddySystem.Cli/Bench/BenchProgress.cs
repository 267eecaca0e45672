using Spectre.Console;

namespace BuddySystem.Cli.Bench;

/// <summary>The progress display of <c>buddy bench</c> and <c>buddy replay</c>.</summary>
internal static class BenchProgress
{
    /// <summary>A progress display refreshed four times a second: the renderer thread competes with the measured loops
    /// for the two cores, so it should wake rarely.</summary>
    public static Progress Create(IAnsiConsole console)
    {
        Progress progress = console.Progress();
        progress.RefreshRate = TimeSpan.FromMilliseconds(250);
        return progress;
    }
}
