using System.CommandLine;
using BuddySystem.Cli.Maps;
using BuddySystem.Cli.Traces;
using BuddySystem.Cli.Text;

namespace BuddySystem.Cli.Commands;

/// <summary>
/// <c>buddy explore TRACE --out page.html</c>: replays a trace prefix on a real heap and writes one self-contained page
/// that steps through it (scrubber, play/pause, memory map, buddyinfo, U(j) over time).
/// </summary>
internal static class ExploreCommand
{
    internal static Command Create()
    {
        var traceArgument = new Argument<FileInfo?>("trace") { Description = "The allocation trace to replay (plain or gzip), e.g. samples/bash.trace.gz.", Arity = ArgumentArity.ZeroOrOne };
        var outOption = new Option<FileInfo>("--out", "-o") { Description = "The page to write.", DefaultValueFactory = _ => new FileInfo("explore.html") };
        var opsOption = new Option<int>("--ops") { Description = "How many operations of the trace to replay.", DefaultValueFactory = _ => 2000 };
        var heapOption = new Option<string>("--heap") { Description = "Heap size, e.g. 64KiB, 512KiB, 8MiB.", DefaultValueFactory = _ => "512KiB" };
        var eagerOption = new Option<bool>("--eager") { Description = "Turn the lazy caches off: every free merges at once, as in the tutorial." };
        var allocatorOption = new Option<string>("--allocator", "-a") { Description = "buddy-heap (free lists and side table) or buddy-tree (the seed's segment tree, node by node).", DefaultValueFactory = _ => "buddy-heap" };
        allocatorOption.AcceptOnlyFromAmong("buddy-heap", "buddy-tree");
        var placementOption = new Option<string>("--placement") { Description = "For buddy-tree: right-first (the tutorial), left-first (buddy2.c) or best-fit.", DefaultValueFactory = _ => "right-first" };
        placementOption.AcceptOnlyFromAmong("right-first", "left-first", "best-fit");
        var tutorialOption = new Option<bool>("--tutorial") { Description = "Step through the tutorial's walk-through on a 1 KiB buddy-tree of 16-byte blocks: allocate, allocate, free, free with the merge (no trace needed)." };
        var command = new Command("explore", "Write a self-contained HTML page that replays a trace prefix step by step on a BuddyHeap.");
        command.Arguments.Add(traceArgument);
        command.Options.Add(outOption);
        command.Options.Add(opsOption);
        command.Options.Add(heapOption);
        command.Options.Add(eagerOption);
        command.Options.Add(allocatorOption);
        command.Options.Add(placementOption);
        command.Options.Add(tutorialOption);
        command.SetAction(result =>
        {
            FileInfo? trace = result.GetValue(traceArgument);
            bool tutorial = result.GetValue(tutorialOption);
            if (trace is null && !tutorial)
            {
                Console.Error.WriteLine("buddy explore: give a trace to replay (e.g. samples/bash.trace.gz), or --tutorial.");
                return 2;
            }
            FileInfo output = result.GetValue(outOption)!;
            int ops = result.GetValue(opsOption);
            string heapText = result.GetValue(heapOption)!;
            if (!ByteSize.TryParse(heapText, out ByteSize heapSize) || heapSize.Bytes < 16)
            {
                Console.Error.WriteLine($"buddy explore: cannot use the heap size '{heapText}': write e.g. 64KiB, 512KiB or 8MiB (at least 16 bytes).");
                return 2;
            }

            if (ops < 0)
            {
                Console.Error.WriteLine("buddy explore: --ops must be 0 or more.");
                return 2;
            }

            try
            {
                if (tutorial || result.GetValue(allocatorOption) == "buddy-tree")
                {
                    BuddyPlacement placement = TreeRecording.ParsePlacement(result.GetValue(placementOption)!);
                    TreeRecording tree = tutorial
                        ? TreeRecording.Tutorial(placement)
                        : TreeRecording.Record(TraceReader.Read(trace!.FullName), trace.Name, ops, heapSize.Bytes, BuddyHeap.MinBlockSize, placement);
                    File.WriteAllText(output.FullName, TreeExplorePage.Build(tree));
                    Console.WriteLine($"explore: {output.FullName} ({tree.Steps} steps on the segment tree, {new FileInfo(output.FullName).Length / 1024} KiB)");
                    return 0;
                }

                BuddyHeapOptions options = result.GetValue(eagerOption) ? BuddyHeapOptions.Eager : BuddyHeapOptions.Default;
                ExploreRecording recording = ExploreRecording.Record(TraceReader.Read(trace!.FullName), trace.Name, ops, heapSize.Bytes, options);
                File.WriteAllText(output.FullName, ExplorePage.Build(recording));
                Console.WriteLine($"explore: {output.FullName} ({recording.Steps} steps, {new FileInfo(output.FullName).Length / 1024} KiB)");
                return 0;
            }
            catch (Exception e) when (e is IOException or InvalidDataException or TraceFormatException or UnauthorizedAccessException or ArgumentOutOfRangeException)
            {
                Console.Error.WriteLine($"buddy explore: {e.Message}");
                return 2;
            }
        });
        return command;
    }
}
