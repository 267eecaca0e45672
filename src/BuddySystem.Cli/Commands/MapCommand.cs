using BuddySystem.Cli.Bench;
using BuddySystem.Cli.Maps;
using BuddySystem.Cli.Replay;
using BuddySystem.Cli.Traces;
using BuddySystem.Diagnostics;

namespace BuddySystem.Cli.Commands;

/// <summary>
/// <c>buddy map</c>: draws a heap as SVG or PNG — after the demo (default), after a W3 workload prefix, after a
/// trace prefix, or a shared heap file as it is now (<c>--shared FILE</c>) — with the buddy tree, the memory map, the buddyinfo row and the fragmentation indices.
/// </summary>
internal static class MapCommand
{
    /// <summary>The registry engine map draws as the seed's segment tree, node by node, rather than as a list of blocks.</summary>
    internal const string SegmentTreeEngine = "buddy-tree";

    /// <summary>The engines map draws: every registry engine that lists its blocks (<see cref="EngineCatalog.SnapshotNames"/>),
    /// and the segment tree.</summary>
    internal static IReadOnlyList<string> Engines { get; } = [.. EngineCatalog.All.Where(e => e.CanSnapshot || e.Id == SegmentTreeEngine).Select(e => e.Id)];

    internal static Command Create()
    {
        var outOption = CommonOptions.Picture("--out", "The picture to write: FILE.svg or FILE.png.", "heap-map.svg", "-o");
        var workloadOption = new Option<string?>("--workload") { Description = "Draw the heap after a prefix of this workload (W3 of docs/benchmarks.md)." };
        workloadOption.AcceptOnlyFromAmong("W3");
        var traceOption = CommonOptions.ExistingFile("--trace", "Draw the heap after a prefix of this allocation trace (plain or gzip).");
        var opsOption = CommonOptions.Ops(2000, "How many operations of the workload or trace to replay.");
        var heapOption = CommonOptions.OptionalHeap($"Heap size for --workload or --trace: default 32MiB for W3, 512KiB for a trace, 64KiB for buddy-tree; at most {ByteSize.Long(HeapRange.Tree.Max)} for buddy-tree", HeapRange.Trace);
        var sharedOption = CommonOptions.ExistingFile("--shared", "Draw this shared heap file (SharedHeap) as it is now; it is opened as any process would open it.");
        var allowOtherWritersOption = ShmCommand.AllowOtherWriters();
        var eagerOption = CommonOptions.Eager();
        var allocatorOption = CommonOptions.Allocator(Engines, "buddy-heap", "buddy-heap; buddy-tree to draw the seed's segment tree node by node (a --trace prefix, or the tutorial's walk-through); any other, such as slab-heap or concurrent-heap (the default heap), draws its blocks, slabs as buddy blocks cut into objects (a --trace or --workload prefix).");
        var placementOption = CommonOptions.Placement();
        var command = new Command("map", "Draw a heap (after the demo by default) as SVG or PNG: buddy tree, memory map, buddyinfo and fragmentation indices.")
        {
            outOption, workloadOption, traceOption, opsOption, heapOption, sharedOption, allowOtherWritersOption, eagerOption, allocatorOption, placementOption,
        };
        command.SetAction(result =>
        {
            FileInfo output = result.GetValue(outOption)!;
            string? workload = result.GetValue(workloadOption);
            FileInfo? trace = result.GetValue(traceOption);
            ulong? heapBytes = result.GetValue(heapOption)?.Bytes;
            string commandLine = "buddy " + string.Join(' ', result.Tokens.Select(t => t.Value));
            if (result.GetValue(sharedOption) is { } shared)
            {
                if (workload != null || trace != null || result.GetValue(allocatorOption) != "buddy-heap")
                {
                    throw new BadInputException("--shared draws the file as it is: give it without --workload, --trace or -a.");
                }

                CommonOptions.RefuseIgnored(result, "--shared", opsOption, heapOption, eagerOption, placementOption);

                (HeapSnapshot sharedSnapshot, string sharedSource) = SharedSnapshot(shared, result.GetValue(allowOtherWritersOption));
                Save(sharedSnapshot, sharedSource, commandLine, output);
                Console.WriteLine($"map: {output.FullName}");
                return 0;
            }

            CommonOptions.RefuseIgnored(result, "a heap other than --shared's", allowOtherWritersOption);
            if (result.GetValue(allocatorOption) == SegmentTreeEngine)
            {
                if (workload != null)
                {
                    throw new BadInputException("buddy-tree draws a --trace prefix or, with neither, the tutorial's walk-through; not a --workload.");
                }

                CommonOptions.RefuseIgnored(result, "-a buddy-tree", eagerOption);
                if (trace == null)
                {
                    CommonOptions.RefuseIgnored(result, "the tutorial's walk-through (-a buddy-tree without --trace)", opsOption, heapOption);
                }

                if (heapBytes is { } treeBytes)
                {
                    HeapRange.Tree.Check(treeBytes, "with -a buddy-tree");
                }

                BuddyPlacement placement = TreeRecording.ParsePlacement(result.GetValue(placementOption)!);
                TreeRecording recording = trace == null
                    ? TreeRecording.Tutorial(placement)
                    : CommandProgress.Over($"replaying {trace.Name}", result.GetValue(opsOption), TraceReader.Read(trace.FullName), read => TreeRecording.Record(read, trace.Name, result.GetValue(opsOption), heapBytes ?? (64UL << 10), BuddyHeap.MinBlockSize, placement));
                string title = string.Create(CultureInfo.InvariantCulture, $"{recording.Title}, {recording.Steps:N0} ops, on a {ByteSize.Long(recording.Tree.Capacity)} BuddyTree");
                Save(HeapSnapshot.Of(recording.Tree), title, commandLine, output, recording.Tree);
                Console.WriteLine($"map: {output.FullName}");
                return 0;
            }

            string engine = result.GetValue(allocatorOption)!;
            if (engine != "buddy-heap" && workload == null && trace == null)
            {
                throw new BadInputException($"{engine} draws a --trace or --workload prefix; with neither, map draws the demo's heap, an 8 MiB LockedHeap over a BuddyHeap.");
            }

            CommonOptions.RefuseIgnored(result, $"-a {engine}", engine == "buddy-heap" ? [placementOption] : [placementOption, eagerOption]);
            if (workload == null && trace == null)
            {
                CommonOptions.RefuseIgnored(result, "the demo's heap (no --trace or --workload)", opsOption, heapOption, eagerOption);
            }

            (HeapSnapshot snapshot, string source) = workload == null && trace == null
                ? (DemoSnapshot(), DemoSource)
                : CommandProgress.Start(AnsiConsole.Console, context => Replayed(workload, trace, result.GetValue(opsOption), heapBytes, result.GetValue(eagerOption), context.AddTask($"replaying {workload ?? trace!.Name}", maxValue: Math.Max(result.GetValue(opsOption), 1)), engine));
            Save(snapshot, source, commandLine, output);
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
    /// <exception cref="BadInputException">Both or neither source, an unknown workload, a heap below 16 bytes.</exception>
    internal static (HeapSnapshot Snapshot, string Source) Replayed(string? workload, FileInfo? trace, int ops, ulong? heap, bool eager, ProgressTask? progress = null, string engine = "buddy-heap")
    {
        if ((workload == null) == (trace == null))
        {
            throw new BadInputException("give either --workload or --trace, not both.");
        }

        if (workload != null && !workload.Equals("W3", StringComparison.OrdinalIgnoreCase))
        {
            throw new BadInputException($"unknown workload '{workload}': only W3 replays operation by operation.");
        }

        ArgumentOutOfRangeException.ThrowIfNegative(ops);
        ulong heapBytes = heap ?? (workload != null ? 32UL << 20 : 512UL << 10);
        if (heapBytes < 16)
        {
            throw new BadInputException($"a heap of {heapBytes} bytes is smaller than the smallest block (16 bytes).");
        }

        IEnumerable<TraceOp> prefix = (workload != null ? W3Stream.AsTrace() : TraceReader.Read(trace!.FullName)).Take(ops);
        string name = workload != null ? "W3" : trace!.Name;
        CompiledTrace compiled = CompiledTrace.Compile(progress is null ? prefix : CommandProgress.Track(prefix, progress), name);
        // buddy-heap keeps --eager; every other engine is the registry's, as soak and the tests run it.
        using TraceCursor replay = engine == "buddy-heap"
            ? new TraceCursor(compiled, heapBytes, eager ? BuddyHeapOptions.Eager : BuddyHeapOptions.Default)
            : TraceCursor.On(compiled, EngineCatalog.CreateTarget(engine, (nuint)heapBytes));
        replay.StepToEnd();
        int done = replay.Done;
        string failed = replay.FailedAllocations == 0 ? string.Empty : string.Create(CultureInfo.InvariantCulture, $", {replay.FailedAllocations:N0} failed");
        string engineName = engine == "buddy-heap" ? (eager ? "BuddyHeap (eager)" : "BuddyHeap (lazy caches)") : $"{replay.EngineType} ({engine})";
        string source = string.Create(CultureInfo.InvariantCulture, $"{name}, {done:N0} ops{failed}, on a {ByteSize.Long(heapBytes)} {engineName}");
        return (replay.Snapshot(), source);
    }

    /// <summary>Opens a shared heap file (recovering it if a process died inside a call, as any Open does) and snapshots it.</summary>
    /// <exception cref="IOException">The file is missing or cannot be opened.</exception>
    /// <exception cref="InvalidDataException">The file is not a shared heap, or is truncated or corrupted.</exception>
    /// <exception cref="BadInputException">The file's heap is corrupted, shared heaps do not work on this system, or other users
    /// can write the file and <paramref name="allowOtherWriters"/> is false.</exception>
    internal static (HeapSnapshot Snapshot, string Source) SharedSnapshot(FileInfo file, bool allowOtherWriters = false)
    {
        using SharedHeap heap = OpenShared(file, allowOtherWriters);
        HeapSnapshot snapshot = HeapSnapshot.Of(heap);
        return (snapshot, $"{file.Name}, a {ByteSize.Long(heap.Capacity)} SharedHeap (offsets from its first block, file offset {heap.DataOffset.ToString("N0", CultureInfo.InvariantCulture)})");
    }

    private static SharedHeap OpenShared(FileInfo file, bool allowOtherWriters)
    {
        try
        {
            return SharedHeap.Open(file.FullName, new SharedHeapOptions { AllowOtherWriters = allowOtherWriters });
        }
        catch (Exception e) when (e is HeapCorruptionException or PlatformNotSupportedException or UnauthorizedAccessException)
        {
            throw new BadInputException(ShmCommand.CommandLineMessage(e), e);
        }
    }

    /// <summary>What the demo's map shows, for its title.</summary>
    internal const string DemoSource = "buddy demo, 8 MiB LockedHeap while the 500-int vec is live";

    /// <summary>Renders <paramref name="snapshot"/> and writes it as SVG or PNG, chosen by the file's extension.</summary>
    /// <exception cref="BadInputException">The extension is neither .svg nor .png.</exception>
    internal static void Save(HeapSnapshot snapshot, string source, string? command, FileInfo output, BuddyTree? tree = null)
    {
        MapScene scene = HeapMapRenderer.Render(snapshot, source, command, tree);
        string extension = output.Extension.ToLowerInvariant();
        if (extension == ".svg")
        {
            using FileStream stream = output.Create();
            MapPictureWriter.WriteSvg(scene, stream);
        }
        else if (extension == ".png")
        {
            using FileStream stream = output.Create();
            MapPictureWriter.WritePng(scene, stream);
        }
        else
        {
            throw new BadInputException($"cannot tell the picture format of '{output.Name}': use a .svg or .png file name.");
        }
    }
}
