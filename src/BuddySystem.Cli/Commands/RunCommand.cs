using System.CommandLine;
using System.Diagnostics;

namespace BuddySystem.Cli.Commands;

/// <summary>
/// <c>buddy run [--stats] [--library FILE] -- PROGRAM ARGS...</c>: runs a program with libbuddymalloc.so preloaded, so
/// every malloc of the process goes to the buddy heap; passes the program's exit code through.
/// </summary>
internal static class RunCommand
{
    /// <summary>Where the README's publish command puts the library, relative to the repository.</summary>
    internal const string LibraryPath = "artifacts/malloc/libbuddymalloc.so";

    internal static Command Create()
    {
        var program = new Argument<string[]>("program") { Description = "The program and its arguments (after --)", Arity = ArgumentArity.OneOrMore };
        var stats = new Option<bool>("--stats") { Description = "At exit, print the heap's bytes, RSS, buddyinfo and fragmentation indices on stderr" };
        var library = CommonOptions.ExistingFile("--library", $"The library (default: {LibraryPath} above the current folder or the tool)");
        var command = new Command("run", "Run a program on the buddy heap (LD_PRELOAD of libbuddymalloc.so).") { program, stats, library };
        command.SetAction(result => Run(result.GetValue(program)!, result.GetValue(stats), result.GetValue(library)?.FullName));
        return command;
    }

    internal static int Run(string[] program, bool stats, string? library)
    {
        library ??= FindLibrary();
        if (library == null || !File.Exists(library))
        {
            throw new BadInputException($"{library ?? LibraryPath} not found; build it with: dotnet publish src/BuddySystem.Malloc -c Release -o artifacts/malloc");
        }

        var start = new ProcessStartInfo(program[0]) { UseShellExecute = false };
        foreach (string argument in program.Skip(1))
        {
            start.ArgumentList.Add(argument);
        }

        start.Environment["LD_PRELOAD"] = Path.GetFullPath(library);
        if (stats)
        {
            start.Environment["BUDDY_MALLOC_STATS"] = "1";
        }

        try
        {
            using Process process = Process.Start(start)!;
            process.WaitForExit();
            return process.ExitCode;
        }
        catch (System.ComponentModel.Win32Exception error)
        {
            throw new BadInputException($"cannot start {program[0]}: {error.Message}", error);
        }
    }

    /// <summary>The library at <see cref="LibraryPath"/> above the current folder or the tool, or null.</summary>
    internal static string? FindLibrary()
    {
        foreach (string? origin in new[] { Environment.CurrentDirectory, AppContext.BaseDirectory })
        {
            for (string? dir = origin; dir != null; dir = Path.GetDirectoryName(dir))
            {
                string candidate = Path.Combine(dir, LibraryPath);
                if (File.Exists(candidate))
                {
                    return candidate;
                }
            }
        }

        return null;
    }
}
