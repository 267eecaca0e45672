using System.Text.RegularExpressions;
using BuddySystem.Cli.Commands;
using BuddySystem.Diagnostics;

namespace BuddySystem.Tests;

public class DemoTests
{
    [Fact]
    public void Run_TutorialTest_PrintsTheSixLinesAndSucceeds()
    {
        var output = new StringWriter();
        int exit = DemoCommand.Run(output);
        string[] lines = output.ToString().Split('\n', StringSplitOptions.TrimEntries);
        Assert.Equal(0, exit);
        Assert.Equal("heap_value assertion successfully!", lines[0]);
        Assert.Matches("^heap_value is at 0x[0-9a-f]+$", lines[1]);
        Assert.Equal("heap_value is in the heap region!", lines[2]);
        Assert.Equal("vec assertion successfully!", lines[3]);
        Assert.Matches("^vec is at 0x[0-9a-f]+$", lines[4]);
        Assert.Equal("vec is in the heap region!", lines[5]);
        Assert.Contains("8,388,608", output.ToString(), StringComparison.Ordinal);
    }

    /// <summary>Issue 32: the text counted cached blocks as the blocks they merge into (one free block at each of orders
    /// 7 to 18) while the map from the same run showed none at orders 0 to 11 and 62 KiB cached.</summary>
    [Fact]
    public void Run_OrderTable_CountsFreeAndCachedBlocksAsTheMapDoes()
    {
        var output = new StringWriter();
        HeapSnapshot? snapshot = null;

        Assert.Equal(0, DemoCommand.Run(output, heap => snapshot = HeapSnapshot.Of(heap)));

        MatchCollection rows = Regex.Matches(output.ToString(), @"^\W+(\d+)\W+\d+ (?:B|KiB|MiB)\W+(\d+)\W+(\d+)\W+$", RegexOptions.Multiline);
        Assert.Equal(snapshot!.OrderCount, rows.Count);
        Assert.True(snapshot.CachedBytes > 0, "the demo's heap has cached blocks");
        foreach (Match row in rows)
        {
            int order = int.Parse(row.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture);
            Assert.Equal(snapshot.FreeBlocksByOrder[order].ToString(System.Globalization.CultureInfo.InvariantCulture), row.Groups[2].Value);
            Assert.Equal(snapshot.Blocks.Count(b => b.Order == order && b.State == BlockState.Cached).ToString(System.Globalization.CultureInfo.InvariantCulture), row.Groups[3].Value);
        }

        Assert.Contains(snapshot.CachedBytes.ToString("N0", System.Globalization.CultureInfo.InvariantCulture), output.ToString(), StringComparison.Ordinal);
    }
}
