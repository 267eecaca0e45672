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

    [Fact]
    public void Save_TwelveAllocators_WritesAPng()
    {
        string path = Path.Combine(Path.GetTempPath(), $"buddy-plot-{Guid.NewGuid():N}.png");
        try
        {
            var results = Enumerable.Range(0, 12).SelectMany(a => new[] { "W1", "W3" }.Select(w => new BenchResult(w, "", $"allocator-{a}", 10 + a, 1000, 0))).ToList();

            BenchPlot.Save(path, results, "test");

            byte[] png = File.ReadAllBytes(path);
            Assert.Equal((byte)0x89, png[0]);
            Assert.Equal((byte)'P', png[1]);
        }
        finally
        {
            File.Delete(path);
        }
    }
}
