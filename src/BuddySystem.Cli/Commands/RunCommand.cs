using BuddySystem.Diagnostics;

namespace BuddySystem.Cli.Commands;

/// <summary>
/// <c>buddy run [--stats] [--harden] [--map FILE] [--library FILE] -- PROGRAM ARGS...</c>: runs a program with libbuddymalloc.so
/// preloaded, so every malloc of the process goes to the buddy heap; passes the program's exit code through. With
/// <c>--map</c>, the library writes its heap's blocks at the program's exit (<c>BUDDY_MALLOC_MAP</c>) and the map is drawn
/// from them with <c>buddy map</c>'s renderer.
/// </summary>
internal static class RunCommand
{
    /// <summary>Where the README's publish command puts the library, relative to the repository.</summary>
    internal const string LibraryPath = "artifacts/malloc/libbuddymalloc.so";

    /// <summary>The variable that turns the library's hardened mode on.</summary>
    internal const string HardenVariable = MallocEnvironment.Harden;

    internal static Command Create()
    {
        var program = new Argument<string[]>("program") { Description = "The program and its arguments (after --)", Arity = ArgumentArity.OneOrMore };
        var stats = new Option<bool>("--stats") { Description = "At exit, print the heap's bytes, RSS, buddyinfo and fragmentation indices on stderr: one report per process that ends through exit with stderr open (none from dash, which ends with _exit, or from coreutils, which close stderr first)" };
        var library = CommonOptions.MallocLibrary($"The library: an ELF shared object exporting malloc (default: {LibraryPath} above the current folder or the tool)");
        var map = CommonOptions.Picture("--map", "Draw the heap as the program leaves it (its exit) to FILE.svg or FILE.png, as buddy map does");
        var harden = new Option<bool>("--harden") { Description = "Hardened mode (BUDDY_MALLOC_HARDEN=1): redzones checked on free, poisoned freed blocks in a quarantine; a misuse or overwrite ends the program with one line naming the address" };
        var command = new Command("run", "Run a program on the buddy heap (LD_PRELOAD of libbuddymalloc.so).") { program, stats, harden, map, library };
        command.SetAction(result => Run(result.GetValue(program)!, result.GetValue(stats), result.GetValue(library)?.FullName, result.GetValue(map), result.GetValue(harden)));
        return command;
    }

    /// <summary>Runs <paramref name="program"/> on the library; returns its exit code.</summary>
    /// <param name="environment">The variables to check first (default: this process's, which the program inherits).</param>
    /// <exception cref="BadInputException">A <c>BUDDY_MALLOC_*</c> variable the library would ignore, a library that is
    /// missing or not a malloc library, a program that cannot start.</exception>
    internal static int Run(string[] program, bool stats, string? library, FileInfo? map = null, bool harden = false, System.Collections.IDictionary? environment = null)
    {
        if (MallocEnvironment.Problem(environment ?? Environment.GetEnvironmentVariables()) is { } variable)
        {
            throw new BadInputException(variable);
        }

        library ??= FindLibrary();
        if (library == null || !File.Exists(library))
        {
            throw new BadInputException($"{library ?? LibraryPath} not found; build it with: dotnet publish src/BuddySystem.Malloc -c Release -o artifacts/malloc");
        }

        if (PreloadLibrary.Problem(library) is { } problem)
        {
            throw new BadInputException($"{library} {problem}.");
        }

        var start = new ProcessStartInfo(program[0]) { UseShellExecute = false };
        foreach (string argument in program.Skip(1))
        {
            start.ArgumentList.Add(argument);
        }

        start.Environment["LD_PRELOAD"] = Path.GetFullPath(library);
        if (stats)
        {
            start.Environment[MallocEnvironment.Stats] = "1";
        }

        if (harden)
        {
            start.Environment[HardenVariable] = "1";
        }

        // %p: the children of the program inherit the variable and write files of their own; the program's is read.
        string? folder = map is null ? null : Directory.CreateTempSubdirectory("buddy-run-map-").FullName;
        if (folder is not null)
        {
            start.Environment[MapVariable] = Path.Combine(folder, "heap-%p.snapshot");
        }

        try
        {
            int exit;
            int pid;
            try
            {
                using Process process = Process.Start(start)!;
                pid = process.Id;
                process.WaitForExit();
                exit = process.ExitCode;
            }
            catch (System.ComponentModel.Win32Exception error)
            {
                throw new BadInputException($"cannot start {program[0]}: {error.Message}", error);
            }

            if (map is not null)
            {
                DrawMap(Path.Combine(folder!, $"heap-{pid}.snapshot"), program, map);
            }

            return exit;
        }
        finally
        {
            if (folder is not null)
            {
                Directory.Delete(folder, recursive: true);
            }
        }
    }

    /// <summary>The variable libbuddymalloc.so reads for the file of its snapshot at exit (ProcessHeap.MapVariable).</summary>
    internal const string MapVariable = MallocEnvironment.Map;

    // The program's exit code still comes back when there is no map: the map is a view of the run, not its result.
    private static void DrawMap(string snapshotPath, string[] program, FileInfo map)
    {
        if (!File.Exists(snapshotPath))
        {
            Console.Error.WriteLine($"buddy run: {program[0]} left no heap snapshot (a program killed by a signal, or ended by _exit or exec, writes none); no map.");
            return;
        }

        HeapSnapshot snapshot;
        using (var reader = new StreamReader(snapshotPath))
        {
            snapshot = HeapSnapshot.Read(reader);
        }

        string source = $"{Path.GetFileName(program[0])} at exit, on libbuddymalloc.so";
        MapCommand.Save(snapshot, source, "buddy run --map " + map.Name + " -- " + string.Join(' ', program), map);
        Console.Error.WriteLine($"map: {map.FullName}");
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
