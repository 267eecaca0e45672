using System.Diagnostics;
using System.Globalization;
using System.Text.RegularExpressions;
using BuddySystem.Cli.Maps;
using BuddySystem.Cli.Traces;
using BuddySystem.Diagnostics;

namespace BuddySystem.Tests;

public class ExploreTests
{
    private static string SampleTrace() => RepositoryFiles.Path("samples", "bash.trace.gz");

    private static (ExploreRecording Recording, Dictionary<int, HeapSnapshot> Snapshots) Record(int ops, BuddyHeapOptions options, ulong heapBytes = 512 << 10)
    {
        var snapshots = new Dictionary<int, HeapSnapshot>();
        ExploreRecording recording = ExploreRecording.Record(TraceReader.Read(SampleTrace()), "bash.trace.gz", ops, heapBytes, options, (step, snapshot) => snapshots[step] = snapshot);
        return (recording, snapshots);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Record_DeltasAppliedInOrder_ReproduceEveryStepsHeap(bool eager)
    {
        (ExploreRecording recording, Dictionary<int, HeapSnapshot> snapshots) = Record(600, eager ? BuddyHeapOptions.Eager : BuddyHeapOptions.Default);
        Assert.Equal(600, recording.Steps);

        var blocks = new SortedDictionary<ulong, HeapBlock>();
        foreach (HeapBlock block in recording.Initial.Blocks)
        {
            blocks.Add(block.Offset, block);
        }

        for (int step = 1; step <= recording.Steps; step++)
        {
            foreach (HeapBlock removed in recording.Removed[step - 1])
            {
                Assert.True(blocks.Remove(removed.Offset, out HeapBlock was) && was == removed, $"step {step}: removed {removed} was not there");
            }

            foreach (HeapBlock added in recording.Added[step - 1])
            {
                blocks.Add(added.Offset, added);
            }

            Assert.Equal(snapshots[step].Blocks, blocks.Values);
            Assert.Equal(snapshots[step].AllocatedBytes, recording.AllocatedBytes[step]);
            Assert.Equal(snapshots[step].LargestFreeBlock, recording.LargestFreeBlock[step]);
        }
    }

    [Fact]
    public void Record_SplitAndMerge_AreSmallDeltas()
    {
        // Eager heap: the first line (a 0 5 16) splits the 512 KiB block down to 16 B, the second (f 0) merges it all back.
        (ExploreRecording recording, _) = Record(2, BuddyHeapOptions.Eager);
        Assert.Equal("a 0 5 16", recording.Operations[0]);
        Assert.Equal([new HeapBlock(0, 15, 512 << 10, BlockState.Free)], recording.Removed[0]);
        Assert.Equal(16, recording.Added[0].Length); // the allocated 16 B block and one free block of each order 0 … 14
        Assert.Equal(5ul, recording.LiveBytes[1]);
        Assert.Equal(recording.Added[0], recording.Removed[1]);
        Assert.Equal(recording.Removed[0], recording.Added[1]);
        Assert.Equal(0ul, recording.LiveBytes[2]);
    }

    [Fact]
    public void Build_Page_IsSelfContained()
    {
        (ExploreRecording recording, _) = Record(50, BuddyHeapOptions.Default);
        string page = ExplorePage.Build(recording);

        Assert.StartsWith("<!doctype html>", page, StringComparison.Ordinal);
        Assert.DoesNotContain("http://", page, StringComparison.Ordinal);
        Assert.DoesNotContain("https://", page, StringComparison.Ordinal);
        Assert.DoesNotContain("<link", page, StringComparison.Ordinal);
        Assert.DoesNotContain("/*RECORDING*/", page, StringComparison.Ordinal);
        Assert.Equal(2, Regex.Matches(page, "</script>").Count);
    }

    [ChromiumFact]
    public void Page_InHeadlessChromiumAtAStep_ShowsTheCountsTheReplayComputed()
    {
        const int step = 450;
        (ExploreRecording recording, Dictionary<int, HeapSnapshot> snapshots) = Record(600, BuddyHeapOptions.Default);
        string directory = Path.Combine(Path.GetTempPath(), $"buddy-explore-{Guid.NewGuid():n}");
        Directory.CreateDirectory(directory);
        try
        {
            string page = Path.Combine(directory, "page.html");
            File.WriteAllText(page, ExplorePage.Build(recording));

            string dom = HeadlessChromium.DumpDom(new Uri(page).AbsoluteUri + "#step=" + step.ToString(CultureInfo.InvariantCulture), directory, "id=\"live-bytes\"");

            Assert.Equal(step.ToString(CultureInfo.InvariantCulture), DataValue(dom, "step"));
            Assert.Equal(recording.LiveBytes[step].ToString(CultureInfo.InvariantCulture), DataValue(dom, "live-bytes"));
            Assert.Equal(recording.AllocatedBytes[step].ToString(CultureInfo.InvariantCulture), DataValue(dom, "allocated-bytes"));
            Assert.Equal(recording.LargestFreeBlock[step].ToString(CultureInfo.InvariantCulture), DataValue(dom, "largest-free"));
            Assert.Equal(snapshots[step].Blocks.Count.ToString(CultureInfo.InvariantCulture), DataValue(dom, "blocks"));
            Assert.Equal(string.Join(' ', snapshots[step].FreeBlocksByOrder), Regex.Match(dom, "id=\"buddyinfo\" data-counts=\"([0-9 ]*)\"").Groups[1].Value);
            Assert.Contains($"id=\"op\">{recording.Operations[step - 1]}<", dom, StringComparison.Ordinal);
        }
        finally
        {
            Directory.Delete(directory, recursive: true);
        }
    }

    private static string DataValue(string dom, string id)
    {
        Match match = Regex.Match(dom, $"id=\"{id}\" data-value=\"([0-9]+)\"");
        Assert.True(match.Success, $"#{id} with a data-value not found in the page's DOM");
        return match.Groups[1].Value;
    }
}
