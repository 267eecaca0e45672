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
        var traceArgument = new Argument<FileInfo>("trace") { Description = "The allocation trace to replay (plain or gzip), e.g. samples/bash.trace.gz." };
        var outOption = new Option<FileInfo>("--out", "-o") { Description = "The page to write.", DefaultValueFactory = _ => new FileInfo("explore.html") };
        var opsOption = new Option<int>("--ops") { Description = "How many operations of the trace to replay.", DefaultValueFactory = _ => 2000 };
        var heapOption = new Option<string>("--heap") { Description = "Heap size, e.g. 64KiB, 512KiB, 8MiB.", DefaultValueFactory = _ => "512KiB" };
        var eagerOption = new Option<bool>("--eager") { Description = "Turn the lazy caches off: every free merges at once, as in the tutorial." };
        var command = new Command("explore", "Write a self-contained HTML page that replays a trace prefix step by step on a BuddyHeap.");
        command.Arguments.Add(traceArgument);
        command.Options.Add(outOption);
        command.Options.Add(opsOption);
        command.Options.Add(heapOption);
        command.Options.Add(eagerOption);
        command.SetAction(result =>
        {
            FileInfo trace = result.GetValue(traceArgument)!;
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
                BuddyHeapOptions options = result.GetValue(eagerOption) ? BuddyHeapOptions.Eager : BuddyHeapOptions.Default;
                ExploreRecording recording = ExploreRecording.Record(TraceReader.Read(trace.FullName), trace.Name, ops, heapSize.Bytes, options);
                File.WriteAllText(output.FullName, ExplorePage.Build(recording));
                Console.WriteLine($"explore: {output.FullName} ({recording.Steps} steps, {new FileInfo(output.FullName).Length / 1024} KiB)");
                return 0;
            }
            catch (Exception e) when (e is IOException or InvalidDataException or TraceFormatException or UnauthorizedAccessException)
            {
                Console.Error.WriteLine($"buddy explore: {e.Message}");
                return 2;
            }
        });
        return command;
    }
}
