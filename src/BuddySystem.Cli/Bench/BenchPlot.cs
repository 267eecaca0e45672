using ScottPlot;

namespace BuddySystem.Cli.Bench;

/// <summary>Draws ns/op per workload case and allocator as grouped bars on a log scale (ScottPlot).</summary>
/// <remarks>A log scale keeps W1's few nanoseconds and W4's tens of microseconds readable in one chart. W6 measures
/// efficiency, not time, so it is left to the table.</remarks>
internal static partial class BenchPlot
{
    /// <summary>Writes the chart to <paramref name="path"/> (PNG).</summary>
    public static void Save(string path, IReadOnlyList<BenchResult> results, string subtitle)
    {
        var timed = results.Where(r => r.Workload != "W6" && r.NsPerOp > 0 && !double.IsNaN(r.NsPerOp)).ToList();
        var cases = timed.Select(r => (r.Workload, r.Param)).Distinct().ToList();
        var allocators = timed.Select(r => r.Allocator).Distinct().ToList();
        var plot = new Plot();
        if (timed.Count == 0)
        {
            plot.Title("no timed results");
            plot.SavePng(path, 800, 400);
            return;
        }

        double floor = Math.Floor(Math.Log10(timed.Min(r => r.NsPerOp)));
        double ceiling = Math.Ceiling(Math.Log10(timed.Max(r => r.NsPerOp)));
        IPalette palette = PaletteFor(allocators.Count);
        int groupWidth = allocators.Count + 1;
        for (int a = 0; a < allocators.Count; a++)
        {
            var bars = new List<Bar>();
            for (int c = 0; c < cases.Count; c++)
            {
                BenchResult? r = timed.FirstOrDefault(x => x.Workload == cases[c].Workload && x.Param == cases[c].Param && x.Allocator == allocators[a]);
                if (r is null)
                {
                    continue;
                }

                bars.Add(new Bar
                {
                    Position = (c * groupWidth) + a,
                    Value = Math.Log10(r.NsPerOp),
                    ValueBase = floor,
                    FillColor = palette.GetColor(a),
                    LineWidth = 0,
                });
            }

            var series = plot.Add.Bars(bars);
            series.LegendText = allocators[a];
        }

        var yTicks = new ScottPlot.TickGenerators.NumericManual();
        for (double power = floor; power <= ceiling; power++)
        {
            double value = Math.Pow(10, power);
            yTicks.AddMajor(power, value >= 1000 ? $"{value / 1000:0} µs" : value >= 1 ? $"{value:0} ns" : $"{value:0.#} ns");
            for (int m = 2; m <= 9 && power < ceiling; m++)
            {
                yTicks.AddMinor(power + Math.Log10(m));
            }
        }

        plot.Axes.Left.TickGenerator = yTicks;
        var xTicks = new ScottPlot.TickGenerators.NumericManual();
        for (int c = 0; c < cases.Count; c++)
        {
            string label = cases[c].Param.Length == 0 ? cases[c].Workload : $"{cases[c].Workload}\n{cases[c].Param}";
            xTicks.AddMajor((c * groupWidth) + ((allocators.Count - 1) / 2.0), label);
        }

        plot.Axes.Bottom.TickGenerator = xTicks;
        plot.Axes.Bottom.MajorTickStyle.Length = 0;
        plot.Axes.SetLimits(-1, cases.Count * groupWidth - 1, floor, ceiling);
        plot.Grid.XAxisStyle.MajorLineStyle.Width = 0;
        plot.Title(string.Create(CultureInfo.InvariantCulture, $"buddy bench: ns per operation, log scale (lower is faster)\n{subtitle}"));
        plot.YLabel("ns / op");
        // Outside the data area, so no bar hides behind it.
        plot.ShowLegend(Edge.Right);
        plot.SavePng(path, Math.Max(1100, cases.Count * groupWidth * 14 + 350), 650);
    }

    /// <summary>A palette with a colour of its own for each of <paramref name="count"/> series: Category10 up to ten,
    /// then Tsitsulin's 25 colours chosen to stay apart (Category10 repeats from the eleventh: glibc and buddy-heap were
    /// one blue in the default bench's plot).</summary>
    internal static IPalette PaletteFor(int count) => count <= 10 ? new ScottPlot.Palettes.Category10() : new ScottPlot.Palettes.Tsitsulin();
}
