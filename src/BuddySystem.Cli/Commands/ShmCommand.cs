namespace BuddySystem.Cli.Commands;

/// <summary><c>buddy shm</c>: the commands for a <see cref="SharedHeap"/> file (one file per subcommand).</summary>
internal static class ShmCommand
{
    internal static Command Create()
    {
        var command = new Command("shm", "Shared heaps (SharedHeap files): print one's stats, soak the crash recovery with killed processes, or bench N processes on one heap.");
        command.Subcommands.Add(ShmStatCommand.Create());
        command.Subcommands.Add(ShmSoakCommand.Create());
        command.Subcommands.Add(ShmBenchCommand.Create());
        return command;
    }

    /// <summary>Opens <paramref name="path"/> as a shared heap, or prints one line naming what is wrong and returns null.</summary>
    /// <param name="path">The heap file.</param>
    /// <param name="command">The command's name for the message, e.g. <c>buddy shm stat</c>.</param>
    /// <param name="error">Where the line goes.</param>
    /// <param name="options">Passed to <see cref="SharedHeap.Open"/>; default none.</param>
    internal static SharedHeap? TryOpen(string path, string command, TextWriter error, SharedHeapOptions? options = null)
    {
        try
        {
            return SharedHeap.Open(path, options);
        }
        catch (Exception e) when (e is IOException or InvalidDataException or UnauthorizedAccessException or HeapCorruptionException or PlatformNotSupportedException or ArgumentException)
        {
            // FileNotFoundException is an IOException; every message already names the file.
            error.WriteLine($"{command}: {CommandLineMessage(e)}");
            return null;
        }
    }

    /// <summary><c>--allow-other-writers</c>: open a heap file that other users can write (shm stat, map --shared).</summary>
    internal static Option<bool> AllowOtherWriters() => new("--allow-other-writers") { Description = "Open the heap file even when users other than this one (or root) can write it." };

    /// <summary>The message of an error from <see cref="SharedHeap.Open"/>, with the library's option named as the flag
    /// that sets it on the command line.</summary>
    internal static string CommandLineMessage(Exception e)
        => e.Message.Replace("set SharedHeapOptions.AllowOtherWriters", "give --allow-other-writers", StringComparison.Ordinal);
}
