using System.Text.Json;
using ScottPlot;

namespace BuddySystem.KestrelBench;

/// <summary>Draws the driver's results (tools/kestrel-bench.sh's JSON) in one PNG of three panels of grouped bars per case
/// and pool: requests/s and p99 latency as ratios to Kestrel's own pool in the same run (the matrix spans 1 KiB and
/// 256 KiB bodies, whose absolute figures differ a hundredfold), and peak RSS in MiB.</summary>
public static class KestrelBenchPlot
{
    /// <summary>Reads <paramref name="jsonPath"/> and writes the chart to <paramref name="pngPath"/>.</summary>
    /// <param name="jsonPath">The driver's results: an object with <c>points</c>, each with <c>pool</c>, <c>case</c>,
    /// <c>rps</c>, <c>p99Ms</c>, <c>peakRssMiB</c> (one pool named <c>kestrel</c>); and <c>load</c> for the subtitle.</param>
    /// <param name="pngPath">Where the PNG goes.</param>
    public static void Save(string jsonPath, string pngPath)
    {
        using JsonDocument document = JsonDocument.Parse(File.ReadAllText(jsonPath));
        JsonElement root = document.RootElement;
        var points = root.GetProperty("points").EnumerateArray()
            .Select(p => (Pool: p.GetProperty("pool").GetString()!, Case: p.GetProperty("case").GetString()!,
                Rps: p.GetProperty("rps").GetDouble(), P99: p.GetProperty("p99Ms").GetDouble(), Rss: p.GetProperty("peakRssMiB").GetDouble()))
            .ToList();
        if (points.Count == 0)
        {
            throw new InvalidOperationException("no points in " + jsonPath);
        }

        string subtitle = root.TryGetProperty("load", out JsonElement load) ? $"load average {load.GetString()}" : "";
        var kestrel = points.Where(p => p.Pool == "kestrel").ToDictionary(p => p.Case);
        double Ratio(string c, double value, Func<(string Pool, string Case, double Rps, double P99, double Rss), double> of) =>
            kestrel.TryGetValue(c, out var k) && of(k) > 0 ? value / of(k) : double.NaN;
        var plot = new Multiplot();
        plot.AddPlots(3);
        Draw(plot.GetPlot(0), points.Select(p => (p.Pool, p.Case, Ratio(p.Case, p.Rps, k => k.Rps))).ToList(), "requests/s × kestrel (higher is better)", subtitle);
        Draw(plot.GetPlot(1), points.Select(p => (p.Pool, p.Case, Ratio(p.Case, p.P99, k => k.P99))).ToList(), "p99 latency × kestrel (lower is better)", subtitle);
        Draw(plot.GetPlot(2), points.Select(p => (p.Pool, p.Case, p.Rss)).ToList(), "peak RSS, MiB (lower is better)", subtitle);
        plot.Layout = new ScottPlot.MultiplotLayouts.Columns();
        plot.SavePng(pngPath, 1800, 540);
    }

    private static void Draw(Plot plot, List<(string Pool, string Case, double Value)> points, string title, string subtitle)
    {
        var cases = points.Select(p => p.Case).Distinct().ToList();
        var pools = points.Select(p => p.Pool).Distinct().ToList();
        var palette = new ScottPlot.Palettes.Category10();
        int groupWidth = pools.Count + 1;
        for (int a = 0; a < pools.Count; a++)
        {
            var bars = new List<Bar>();
            for (int c = 0; c < cases.Count; c++)
            {
                foreach (var p in points.Where(p => p.Case == cases[c] && p.Pool == pools[a] && !double.IsNaN(p.Value)))
                {
                    bars.Add(new Bar { Position = (c * groupWidth) + a, Value = p.Value, FillColor = palette.GetColor(a), LineWidth = 0 });
                }
            }

            var series = plot.Add.Bars(bars);
            series.LegendText = pools[a];
        }

        var ticks = new ScottPlot.TickGenerators.NumericManual();
        for (int c = 0; c < cases.Count; c++)
        {
            ticks.AddMajor((c * groupWidth) + ((pools.Count - 1) / 2.0), cases[c].Replace(' ', '\n'));
        }

        plot.Axes.Bottom.TickGenerator = ticks;
        plot.Axes.Bottom.MajorTickStyle.Length = 0;
        plot.Grid.XAxisStyle.MajorLineStyle.Width = 0;
        plot.Axes.Margins(bottom: 0);
        plot.Title(subtitle.Length == 0 ? title : $"{title}\n{subtitle}");
        plot.ShowLegend(Edge.Bottom);
    }
}
