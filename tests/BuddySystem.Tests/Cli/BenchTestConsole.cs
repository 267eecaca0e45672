using Spectre.Console;

namespace BuddySystem.Tests;

/// <summary>A Spectre console that writes plain text to a string, for checking what the CLI commands print.</summary>
internal static class BenchTestConsole
{
    public static IAnsiConsole Create(StringWriter writer)
    {
        IAnsiConsole console = AnsiConsole.Create(new AnsiConsoleSettings
        {
            Ansi = AnsiSupport.No,
            ColorSystem = ColorSystemSupport.NoColors,
            Interactive = InteractionSupport.No,
            Out = new AnsiConsoleOutput(writer),
        });

        // Wide enough that messages are not wrapped in the middle of what a test looks for.
        console.Profile.Width = 400;
        return console;
    }
}
