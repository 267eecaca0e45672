using System.CommandLine;
using BuddySystem.Cli.Maps;
using BuddySystem.Diagnostics;

namespace BuddySystem.Cli.Commands;

/// <summary>
/// <c>buddy map</c>: draws a heap as SVG or PNG — after the demo (default), after a W3 workload prefix, or after a
/// trace prefix — with the buddy tree, the memory map, the buddyinfo row and the fragmentation indices.
/// </summary>
internal static class MapCommand
{
    internal static Command Create()
    {
        var outOption = new Option<FileInfo>("--out", "-o")
        {
            Description = "The picture to write: FILE.svg or FILE.png.",
            DefaultValueFactory = _ => new FileInfo("heap-map.svg"),
        };
        var command = new Command("map", "Draw a heap (after the demo by default) as SVG or PNG: buddy tree, memory map, buddyinfo and fragmentation indices.");
        command.Options.Add(outOption);
        command.SetAction(result =>
        {
            FileInfo output = result.GetValue(outOption)!;
            HeapSnapshot? snapshot = null;
            int exit = DemoCommand.Run(TextWriter.Null, heap => snapshot = HeapSnapshot.Of(heap));
            if (exit != 0 || snapshot == null)
            {
                Console.Error.WriteLine("buddy map: the demo failed; run `buddy demo` to see why.");
                return 1;
            }

            Save(snapshot, DemoSource, "buddy map --out " + output.Name, output);
            Console.WriteLine($"map: {output.FullName}");
            return 0;
        });
        return command;
    }

    /// <summary>What the demo's map shows, for its title.</summary>
    internal const string DemoSource = "buddy demo, 8 MiB LockedHeap while the 500-int vec is live";

    /// <summary>Renders <paramref name="snapshot"/> and writes it as SVG or PNG, chosen by the file's extension.</summary>
    /// <exception cref="ArgumentException">The extension is neither .svg nor .png.</exception>
    internal static void Save(HeapSnapshot snapshot, string source, string? command, FileInfo output)
    {
        MapScene scene = HeapMapRenderer.Render(snapshot, source, command);
        string extension = output.Extension.ToLowerInvariant();
        if (extension == ".svg")
        {
            File.WriteAllText(output.FullName, SvgMapWriter.Write(scene));
        }
        else if (extension == ".png")
        {
            using FileStream stream = output.Create();
            PngMapWriter.Write(scene, stream);
        }
        else
        {
            throw new ArgumentException($"Cannot tell the picture format of '{output.Name}': use a .svg or .png file name.", nameof(output));
        }
    }
}
