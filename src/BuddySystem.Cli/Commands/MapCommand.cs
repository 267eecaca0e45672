using System.CommandLine;
using System.Globalization;
using BuddySystem.Cli.Bench;
using BuddySystem.Cli.Maps;
using BuddySystem.Cli.Traces;
using BuddySystem.Diagnostics;
using BuddySystem.Cli.Text;

namespace BuddySystem.Cli.Commands;

/// <summary>
/// <c>buddy map</c>: draws a heap as SVG or PNG — after the demo (default), after a W3 workload prefix, after a
/// trace prefix, or a shared heap file as it is now (<c>--shared FILE</c>) — with the buddy tree, the memory map, the buddyinfo row and the fragmentation indices.
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
        var workloadOption = new Option<string?>("--workload") { Description = "Draw the heap after a prefix of this workload (W3 of DESIGN.md §5)." };
        var traceOption = new Option<FileInfo?>("--trace") { Description = "Draw the heap after a prefix of this allocation trace (plain or gzip)." };
        var opsOption = new Option<int>("--ops") { Description = "How many operations of the workload or trace to replay.", DefaultValueFactory = _ => 2000 };
        var heapOption = new Option<string?>("--heap") { Description = "Heap size for --workload or --trace, e.g. 64B, 512KiB, 32MiB, 1GiB (default: 32MiB for W3, 512KiB for a trace)." };
        var sharedOption = new Option<FileInfo?>("--shared") { Description = "Draw this shared heap file (SharedHeap) as it is now; it is opened as any process would open it." };
        var eagerOption = new Option<bool>("--eager") { Description = "Turn the lazy caches off: every free merges at once, as in the tutorial." };
        var allocatorOption = new Option<string>("--allocator", "-a") { Description = "buddy-heap, or buddy-tree to draw the seed's segment tree node by node (a --trace prefix, or the tutorial's walk-through).", DefaultValueFactory = _ => "buddy-heap" };
        allocatorOption.AcceptOnlyFromAmong("buddy-heap", "buddy-tree");
        var placementOption = new Option<string>("--placement") { Description = "For buddy-tree: right-first (the tutorial), left-first (buddy2.c) or best-fit.", DefaultValueFactory = _ => "right-first" };
        placementOption.AcceptOnlyFromAmong("right-first", "left-first", "best-fit");
        var command = new Command("map", "Draw a heap (after the demo by default) as SVG or PNG: buddy tree, memory map, buddyinfo and fragmentation indices.");
        command.Options.Add(outOption);
        command.Options.Add(workloadOption);
        command.Options.Add(traceOption);
        command.Options.Add(opsOption);
        command.Options.Add(heapOption);
        command.Options.Add(sharedOption);
        command.Options.Add(eagerOption);
        command.Options.Add(allocatorOption);
        command.Options.Add(placementOption);
        command.SetAction(result =>
        {
            FileInfo output = result.GetValue(outOption)!;
            string? workload = result.GetValue(workloadOption);
            FileInfo? trace = result.GetValue(traceOption);
            string commandLine = "buddy " + string.Join(' ', result.Tokens.Select(t => t.Value));
            try
            {
                FileInfo? shared = result.GetValue(sharedOption);
                if (shared != null)
                {
                    if (workload != null || trace != null || result.GetValue(allocatorOption) != "buddy-heap")
                    {
                        throw new ArgumentException("--shared draws the file as it is: give it without --workload, --trace or -a.");
                    }

                    (HeapSnapshot sharedSnapshot, string sharedSource) = SharedSnapshot(shared);
                    Save(sharedSnapshot, sharedSource, commandLine, output);
                    Console.WriteLine($"map: {output.FullName}");
                    return 0;
                }

                if (result.GetValue(allocatorOption) == "buddy-tree")
                {
                    if (workload != null)
                    {
                        throw new ArgumentException("buddy-tree draws a --trace prefix or, with neither, the tutorial's walk-through; not a --workload.");
                    }

                    BuddyPlacement placement = TreeRecording.ParsePlacement(result.GetValue(placementOption)!);
                    TreeRecording recording = trace == null
                        ? TreeRecording.Tutorial(placement)
                        : TreeRecording.Record(TraceReader.Read(trace.FullName), trace.Name, result.GetValue(opsOption), TreeHeapBytes(result.GetValue(heapOption)), BuddyHeap.MinBlockSize, placement);
                    string title = string.Create(CultureInfo.InvariantCulture, $"{recording.Title}, {recording.Steps:N0} ops, on a {ByteSize.Long(recording.Tree.Capacity)} BuddyTree");
                    Save(HeapSnapshot.Of(recording.Tree), title, commandLine, output, recording.Tree);
                    Console.WriteLine($"map: {output.FullName}");
                    return 0;
                }

                (HeapSnapshot snapshot, string source) = workload == null && trace == null
                    ? (DemoSnapshot(), DemoSource)
                    : Replayed(workload, trace, result.GetValue(opsOption), result.GetValue(heapOption), result.GetValue(eagerOption));
                Save(snapshot, source, commandLine, output);
            }
            catch (Exception e) when (e is ArgumentException or InvalidDataException or IOException or Traces.TraceFormatException or HeapCorruptionException or PlatformNotSupportedException)
            {
                Console.Error.WriteLine($"buddy map: {e.Message}");
                return 2;
            }

            Console.WriteLine($"map: {output.FullName}");
            return 0;
        });
        return command;
    }

    /// <summary>The demo's heap while its vec is live.</summary>
    internal static HeapSnapshot DemoSnapshot()
    {
        HeapSnapshot? snapshot = null;
        int exit = DemoCommand.Run(TextWriter.Null, heap => snapshot = HeapSnapshot.Of(heap));
        return exit == 0 && snapshot != null ? snapshot : throw new InvalidDataException("the demo failed; run `buddy demo` to see why.");
    }

    /// <summary>Replays <paramref name="ops"/> operations of W3 or of a trace on a fresh heap and snapshots it.</summary>
    /// <exception cref="ArgumentException">Both or neither source, an unknown workload, a bad size or count.</exception>
    internal static (HeapSnapshot Snapshot, string Source) Replayed(string? workload, FileInfo? trace, int ops, string? heapText, bool eager)
    {
        if ((workload == null) == (trace == null))
        {
            throw new ArgumentException("give either --workload or --trace, not both.");
        }

        if (workload != null && !workload.Equals("W3", StringComparison.OrdinalIgnoreCase))
        {
            throw new ArgumentException($"unknown workload '{workload}': only W3 replays operation by operation.");
        }

        ArgumentOutOfRangeException.ThrowIfNegative(ops);
        ulong heapBytes = workload != null ? 32UL << 20 : 512UL << 10;
        if (heapText != null)
        {
            heapBytes = ByteSize.TryParse(heapText, out ByteSize parsed) ? parsed.Bytes : throw new ArgumentException($"cannot read the heap size '{heapText}': write e.g. 4096, 64B, 512KiB, 32MiB or 1GiB.");
        }

        if (heapBytes < 16)
        {
            throw new ArgumentException($"a heap of {heapBytes} bytes is smaller than the smallest block (16 bytes).");
        }

        using var replay = new HeapReplay(heapBytes, eager ? BuddyHeapOptions.Eager : BuddyHeapOptions.Default);
        int done = 0;
        if (workload != null)
        {
            var stream = new W3Stream(W3Stream.DefaultSeed);
            for (; done < ops; done++)
            {
                replay.Apply(stream.Next());
            }
        }
        else
        {
            foreach (TraceOp op in TraceReader.Read(trace!.FullName))
            {
                if (done == ops)
                {
                    break;
                }

                replay.Apply(op);
                done++;
            }
        }

        string failed = replay.FailedAllocations == 0 ? string.Empty : string.Create(CultureInfo.InvariantCulture, $", {replay.FailedAllocations:N0} failed");
        string name = workload != null ? "W3" : trace!.Name;
        string mode = eager ? "eager" : "lazy caches";
        string source = string.Create(CultureInfo.InvariantCulture, $"{name}, {done:N0} ops{failed}, on a {ByteSize.Long(heapBytes)} BuddyHeap ({mode})");
        return (HeapSnapshot.Of(replay.Heap), source);
    }

    /// <summary>Opens a shared heap file (recovering it if a process died inside a call, as any Open does) and snapshots it.</summary>
    /// <exception cref="IOException">The file is missing or cannot be opened.</exception>
    /// <exception cref="InvalidDataException">The file is not a shared heap, or is truncated or corrupted.</exception>
    internal static (HeapSnapshot Snapshot, string Source) SharedSnapshot(FileInfo file)
    {
        using SharedHeap heap = SharedHeap.Open(file.FullName);
        HeapSnapshot snapshot = HeapSnapshot.Of(heap);
        return (snapshot, $"{file.Name}, a {ByteSize.Long(heap.Capacity)} SharedHeap (offsets from its first block, file offset {heap.DataOffset.ToString("N0", CultureInfo.InvariantCulture)})");
    }

    private static ulong TreeHeapBytes(string? heapText) =>
        heapText == null ? 64UL << 10
        : ByteSize.TryParse(heapText, out ByteSize parsed) && parsed.Bytes >= 16 ? parsed.Bytes
        : throw new ArgumentException($"cannot read the heap size '{heapText}': write e.g. 1KiB, 64KiB or 1MiB (at least 16 bytes).");

    /// <summary>What the demo's map shows, for its title.</summary>
    internal const string DemoSource = "buddy demo, 8 MiB LockedHeap while the 500-int vec is live";

    /// <summary>Renders <paramref name="snapshot"/> and writes it as SVG or PNG, chosen by the file's extension.</summary>
    /// <exception cref="ArgumentException">The extension is neither .svg nor .png.</exception>
    internal static void Save(HeapSnapshot snapshot, string source, string? command, FileInfo output, BuddyTree? tree = null)
    {
        MapScene scene = HeapMapRenderer.Render(snapshot, source, command, tree);
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
