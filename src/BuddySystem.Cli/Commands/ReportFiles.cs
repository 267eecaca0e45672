namespace BuddySystem.Cli.Commands;

/// <summary>The report files a command writes when asked (<c>--json</c>, <c>--markdown</c>, <c>--plot</c>).</summary>
internal static class ReportFiles
{
    /// <summary>Writes the file at <paramref name="path"/> with <paramref name="write"/> when one was asked for (not null),
    /// then says so on <paramref name="console"/>, so a user sees where every report went.</summary>
    public static void Write(IAnsiConsole console, string? path, Action<string> write)
    {
        if (path is null)
        {
            return;
        }

        write(path);
        console.MarkupLine($"wrote [bold]{Markup.Escape(path)}[/]");
    }
}
