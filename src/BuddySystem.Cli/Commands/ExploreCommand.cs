using BuddySystem.Cli.Maps;
using BuddySystem.Cli.Traces;

namespace BuddySystem.Cli.Commands;

/// <summary>
/// <c>buddy explore TRACE --out page.html</c>: replays a trace prefix on a real heap and writes one self-contained page
/// that steps through it (scrubber, play/pause, memory map, buddyinfo, U(j) over time).
/// </summary>
internal static class ExploreCommand
{
    /// <summary>The engines the explorer steps through (the map draws more: <see cref="MapCommand.Engines"/>).</summary>
    internal static readonly string[] Engines = ["buddy-heap", "buddy-tree"];

    /// <summary>The most steps a page records: 20 000 steps of bash.trace.gz make a 3.3 MB page in about 10 s; 100 000 ran
    /// for minutes with a page no browser steps through smoothly.</summary>
    internal const int MaxSteps = 20_000;

    internal static Command Create()
    {
        var traceArgument = CommonOptions.Trace("The allocation trace to replay (plain or gzip), e.g. samples/bash.trace.gz.", optional: true);
        var outOption = CommonOptions.Output(new Option<FileInfo>("--out", "-o") { Description = "The page to write: FILE.html.", DefaultValueFactory = _ => new FileInfo("explore.html") }, ".html", ".htm");
        var opsOption = CommonOptions.AtMost(
            CommonOptions.Ops(2000, string.Create(CultureInfo.InvariantCulture, $"How many operations of the trace to replay, at most {MaxSteps:N0}.")),
            MaxSteps,
            "a page holds at most that many steps (about 3 MB, some 10 s to record); `buddy map --trace FILE --ops N` draws the heap after more");
        var heapOption = CommonOptions.Heap($"Heap size; at most {ByteSize.Long(HeapRange.Tree.Max)} with -a buddy-tree", new ByteSize(512UL << 10), HeapRange.Trace);
        var eagerOption = CommonOptions.Eager();
        var allocatorOption = CommonOptions.Allocator(Engines, "buddy-heap", "buddy-heap (free lists and side table) or buddy-tree (the seed's segment tree, node by node).");
        var placementOption = CommonOptions.Placement();
        var tutorialOption = new Option<bool>("--tutorial") { Description = $"Step through the tutorial's walk-through on a buddy-tree, no trace needed: {TreeRecording.TutorialSteps}." };
        var command = new Command("explore", "Write a self-contained HTML page that replays a trace prefix step by step on a BuddyHeap.")
        {
            traceArgument, outOption, opsOption, heapOption, eagerOption, allocatorOption, placementOption, tutorialOption,
        };
        command.SetAction(result =>
        {
            FileInfo? trace = result.GetValue(traceArgument);
            bool tutorial = result.GetValue(tutorialOption);
            string engine = result.GetValue(allocatorOption)!;

            // Every option is used in the case chosen, or refused: none is dropped without a word.
            if (tutorial)
            {
                CommonOptions.RefuseIgnored(result, "--tutorial", traceArgument, opsOption, heapOption, eagerOption);
                if (engine != "buddy-tree")
                {
                    throw new BadInputException($"--tutorial steps through a buddy-tree: -a {engine} does not go with it.");
                }
            }
            else if (trace is not { Exists: true })
            {
                throw new BadInputException(trace is null ? "give a trace to replay (e.g. samples/bash.trace.gz), or --tutorial." : $"trace '{trace}' not found.");
            }
            else
            {
                CommonOptions.RefuseIgnored(result, $"-a {engine}", engine == "buddy-tree" ? eagerOption : placementOption);
                if (engine == "buddy-tree")
                {
                    HeapRange.Tree.Check(result.GetValue(heapOption).Bytes, "with -a buddy-tree");
                }
            }

            FileInfo output = result.GetValue(outOption)!;
            int ops = result.GetValue(opsOption);
            ulong heapBytes = result.GetValue(heapOption).Bytes;
            if (tutorial || engine == "buddy-tree")
            {
                BuddyPlacement placement = TreeRecording.ParsePlacement(result.GetValue(placementOption)!);
                TreeRecording tree = tutorial
                    ? TreeRecording.Tutorial(placement)
                    : CommandProgress.Over($"replaying {trace!.Name}", ops, TraceReader.Read(trace.FullName), read => TreeRecording.Record(read, trace.Name, ops, heapBytes, BuddyHeap.MinBlockSize, placement));
                File.WriteAllText(output.FullName, TreeExplorePage.Build(tree));
                Console.WriteLine($"explore: {output.FullName} ({tree.Steps} steps on the segment tree, {new FileInfo(output.FullName).Length / 1024} KiB)");
                return 0;
            }

            BuddyHeapOptions options = result.GetValue(eagerOption) ? BuddyHeapOptions.Eager : BuddyHeapOptions.Default;
            // The bar follows the recorded steps, not the reading: the trace prefix is read at once, then each step is
            // replayed and the heap snapshotted, which is where the time goes (the bar stood at 100 % before).
            ExploreRecording recording = CommandProgress.Start(AnsiConsole.Console, context =>
            {
                ProgressTask task = context.AddTask($"recording {trace!.Name}", maxValue: Math.Max(ops, 1));
                ExploreRecording recorded = ExploreRecording.Record(TraceReader.Read(trace.FullName), trace.Name, ops, heapBytes, options, (step, _) =>
                {
                    if ((step & 63) == 0)
                    {
                        task.Value = step;
                    }
                });
                task.Value = task.MaxValue;
                return recorded;
            });
            File.WriteAllText(output.FullName, ExplorePage.Build(recording));
            Console.WriteLine($"explore: {output.FullName} ({recording.Steps} steps, {new FileInfo(output.FullName).Length / 1024} KiB)");
            return 0;
        });
        return command;
    }
}
