using BuddySystem.Cli.Bench;

namespace BuddySystem.Tests;

/// <summary>The bench plot's colours (issue 32: with more than ten allocators, glibc and buddy-heap shared one blue).</summary>
public class BenchPlotTests
{
    [Theory]
    [InlineData(1)]
    [InlineData(10)]
    [InlineData(11)]
    [InlineData(16)]
    [InlineData(25)]
    public void PaletteFor_EachSeriesItsOwnColour(int count)
    {
        ScottPlot.IPalette palette = BenchPlot.PaletteFor(count);

        Assert.Equal(count, Enumerable.Range(0, count).Select(i => palette.GetColor(i).ToHex()).Distinct().Count());
    }

    [Fact]
    public void PaletteFor_TheDefaultBench_HasMoreAllocatorsThanCategory10()
        => Assert.InRange(BenchAllocators.All.Count, 11, 25);
}
