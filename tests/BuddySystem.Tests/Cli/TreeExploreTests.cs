using System.Diagnostics;
using System.Globalization;
using System.Numerics;
using System.Text.RegularExpressions;
using BuddySystem.Cli.Maps;
using BuddySystem.Cli.Traces;

namespace BuddySystem.Tests;

/// <summary><c>buddy explore -a buddy-tree</c> and <c>--tutorial</c>: the segment tree recorded step by step, and its page.</summary>
public class TreeExploreTests
{
    private static string SampleTrace() => RepositoryFiles.Path("samples", "bash.trace.gz");

    [Theory]
    [InlineData(BuddyPlacement.RightFirst)]
    [InlineData(BuddyPlacement.LeftFirst)]
    [InlineData(BuddyPlacement.BestFit)]
    public void Record_ChangesRebuildTheTree_AndEveryRuleIsTheSeeds(BuddyPlacement placement)
    {
        TreeRecording recording = TreeRecording.Record(TraceReader.Read(SampleTrace()), "bash", 3000, 64 << 10, 16, placement);

        Assert.Equal(3000, recording.Steps);
        Assert.Equal(recording.Tree.Nodes.ToArray(), recording.NodesAt(recording.Steps));
        int merges = 0;
        for (int step = 0; step < recording.Steps; step++)
        {
            byte[] after = recording.NodesAt(step + 1);
            foreach (TreeAction action in recording.Actions[step])
            {
                foreach (TreeChange change in action.Changes)
                {
                    int order = recording.Tree.RootOrder - BitOperations.Log2((uint)change.Node);
                    if (change.Node == action.Node)
                    {
                        Assert.Equal(action.Allocate ? TreeRule.Taken : TreeRule.Restored, change.Rule);
                        continue;
                    }

                    // Every changed ancestor lies on the chosen node's path, and its rule is the seed's.
                    Assert.Equal(action.Node >> (BitOperations.Log2((uint)action.Node) - BitOperations.Log2((uint)change.Node)), change.Node);
                    bool bothWhole = after[2 * change.Node] == order && after[(2 * change.Node) + 1] == order;
                    if (recording.Actions[step].Length == 1)
                    {
                        Assert.Equal(bothWhole ? TreeRule.Merge : TreeRule.Max, change.Rule);
                        Assert.Equal(bothWhole ? order + 1 : Math.Max(after[2 * change.Node], after[(2 * change.Node) + 1]), change.After);
                    }

                    merges += change.Rule == TreeRule.Merge ? 1 : 0;
                }
            }
        }

        Assert.True(merges > 0, "a bash prefix of 3 000 calls frees and merges");
    }

    [Fact]
    public void Tutorial_AllocatesRightFirst_AndTheLastFreeMergesBackToOneBlock()
    {
        TreeRecording tutorial = TreeRecording.Tutorial();

        Assert.Equal(64UL, tutorial.Tree.LeafCount);
        TreeAction first = Assert.Single(tutorial.Actions[0]);
        Assert.Equal(3, first.Order);                 // 100 bytes -> a 128-byte block
        Assert.Equal(1024UL - 128, first.Offset);     // right first: the highest 128 bytes
        Assert.All(tutorial.Actions[^1][0].Changes.Skip(1), change => Assert.Equal(TreeRule.Merge, change.Rule));
        Assert.Equal(tutorial.Initial, tutorial.NodesAt(tutorial.Steps));
        Assert.Equal(tutorial.Tree.RootOrder + 1, tutorial.Tree.Nodes[1]);
    }

    [Fact]
    public void Record_FreeOfADeadId_IsBadInputNamingTheLine()
    {
        TraceOp[] ops = [new(TraceOpKind.Allocate, 1, 16, 16, 1), new(TraceOpKind.Free, 2, 0, 0, 2)];

        var error = Assert.Throws<TraceFormatException>(() => TreeRecording.Record(ops, "t", 10, 1024, 16, BuddyPlacement.RightFirst));
        Assert.Contains("t:2", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Map_OfTheTutorialTree_DrawsEveryNodeWithItsValue()
    {
        TreeRecording tutorial = TreeRecording.Record(TutorialPrefix(), "tutorial", 2, 1024, 16, BuddyPlacement.RightFirst);

        string svg = MapPictureWriter.Svg(HeapMapRenderer.Render(Diagnostics.HeapSnapshot.Of(tutorial.Tree), "tutorial", tree: tutorial.Tree));

        // After a 128-byte and a 64-byte allocation on 1 KiB: the root still has 512 B free (value 6), its right child 256 B (5).
        Assert.Contains("Segment tree (the seed&apos;s RightFirst BuddyTree), all 7 levels", svg, StringComparison.Ordinal);
        Assert.Matches(@">\s*6 · 512B\s*<", svg);
        Assert.Matches(@">\s*5 · 256B\s*<", svg);
        Assert.Equal(6, tutorial.Tree.Nodes[1]);
        Assert.Equal(5, tutorial.Tree.Nodes[3]);
    }

    private static TraceOp[] TutorialPrefix() => [new(TraceOpKind.Allocate, 1, 100, 16, 1), new(TraceOpKind.Allocate, 2, 40, 16, 2)];

    [ChromiumFact]
    public void Page_AtAStep_ShowsTheTreeOfTheReplay_AndTheDescendedPath()
    {
        TreeRecording recording = TreeRecording.Record(TraceReader.Read(SampleTrace()), "bash", 400, 1024 << 4, 16, BuddyPlacement.RightFirst);
        int step = Enumerable.Range(1, 400).Last(s => recording.Actions[s - 1].Length == 1 && recording.Actions[s - 1][0].Allocate && recording.Actions[s - 1][0].Node > 0);
        byte[] nodes = recording.NodesAt(step);
        string directory = Directory.CreateTempSubdirectory("buddy-tree-page-").FullName;
        try
        {
            string page = Path.Combine(directory, "tree.html");
            File.WriteAllText(page, TreeExplorePage.Build(recording));

            string dom = HeadlessChromium.DumpDom(new Uri(page).AbsoluteUri + "#step=" + step.ToString(CultureInfo.InvariantCulture), directory, "id=\"tree\"");

            Assert.Contains($"id=\"step\" data-value=\"{step}\"", dom, StringComparison.Ordinal);
            int chosen = recording.Actions[step - 1][0].Node;
            Assert.Contains($"id=\"chosen\" data-value=\"{chosen}\"", dom, StringComparison.Ordinal);
            var path = new List<int>();
            for (int node = chosen; node >= 1; node >>= 1)
            {
                path.Insert(0, node);
            }

            Assert.Contains($"data-nodes=\"{string.Join(' ', path)}\"", dom, StringComparison.Ordinal);
            Assert.Contains($"data-values=\"{string.Join(' ', path.Select(n => nodes[n]))}\"", dom, StringComparison.Ordinal);
            MatchCollection drawn = Regex.Matches(dom, "data-node=\"([0-9]+)\" data-value=\"([0-9]+)\"");
            Assert.True(drawn.Count >= 127, $"only {drawn.Count} nodes drawn");
            Assert.All(drawn, m => Assert.Equal(nodes[int.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture)].ToString(CultureInfo.InvariantCulture), m.Groups[2].Value));
        }
        finally
        {
            Directory.Delete(directory, recursive: true);
        }
    }

    [Fact]
    public void TutorialSteps_HelpAndReadmeSayTheStepsTheRecordingTakes()
    {
        TreeRecording tutorial = TreeRecording.Tutorial();
        string readme = Regex.Replace(File.ReadAllText(RepositoryFiles.Path("README.md")), @"\s+", " ");
        System.CommandLine.Option option = BuddySystem.Cli.Commands.ExploreCommand.Create().Options.Single(o => o.Name == "--tutorial");

        Assert.Equal(6, tutorial.Steps);
        Assert.StartsWith("allocate 100 B, allocate 40 B, allocate 300 B, free the 100 B, free the 40 B, free the 300 B, on 1 KiB of 16-byte blocks (64 leaves)", TreeRecording.TutorialSteps, StringComparison.Ordinal);
        Assert.Contains(TreeRecording.TutorialSteps, option.Description, StringComparison.Ordinal);
        Assert.Contains($"`--tutorial` needs no trace: {TreeRecording.TutorialSteps}", readme, StringComparison.Ordinal);
    }
}
