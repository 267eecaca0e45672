using ScottPlot;

namespace BuddySystem.Cli.Bench;

internal static partial class BenchPlot
{
    /// <summary>Workload P's chart (PNG): per program, each allocator's wall time, CPU time and peak RSS as a ratio to mimalloc's in
    /// the same run (or glibc's without mimalloc), with the goals drawn: time 1.0×, RSS 1.1×.</summary>
    public static void SavePrograms(string path, IReadOnlyList<BenchResult> results, string subtitle)
    {
        string reference = results.Any(r => r.Allocator == "mimalloc") ? "mimalloc" : "glibc";
        var programs = results.Select(r => r.Param).Distinct().ToList();
        var allocators = results.Select(r => r.Allocator).Distinct().Where(a => a != reference).ToList();
        var plot = new Plot();
        IPalette palette = PaletteFor(allocators.Count);
        int groupWidth = (3 * allocators.Count) + 1;
        double top = 1.2;
        for (int a = 0; a < allocators.Count; a++)
        {
            var time = new List<Bar>();
            var cpu = new List<Bar>();
            var rss = new List<Bar>();
            for (int p = 0; p < programs.Count; p++)
            {
                BenchResult? row = results.FirstOrDefault(r => r.Param == programs[p] && r.Allocator == allocators[a]);
                BenchResult? baseline = results.FirstOrDefault(r => r.Param == programs[p] && r.Allocator == reference);
                if (row is null || baseline is null || baseline.NsPerOp <= 0 || baseline.MaxRssBytes is not > 0)
                {
                    continue;
                }

                double timeRatio = row.NsPerOp / baseline.NsPerOp;
                double cpuRatio = baseline.CpuNs is > 0 ? (row.CpuNs ?? 0) / baseline.CpuNs.Value : 0;
                double rssRatio = (double)(row.MaxRssBytes ?? 0) / baseline.MaxRssBytes.Value;
                top = Math.Max(top, Math.Max(Math.Max(timeRatio, cpuRatio), rssRatio) * 1.1);
                time.Add(new Bar { Position = (p * groupWidth) + (3 * a), Value = timeRatio, FillColor = palette.GetColor(a), LineWidth = 0 });
                cpu.Add(new Bar { Position = (p * groupWidth) + (3 * a) + 1, Value = cpuRatio, FillColor = palette.GetColor(a).WithAlpha(0.7), LineWidth = 0 });
                rss.Add(new Bar { Position = (p * groupWidth) + (3 * a) + 2, Value = rssRatio, FillColor = palette.GetColor(a).WithAlpha(0.35), LineWidth = 0 });
            }

            plot.Add.Bars(time).LegendText = $"{allocators[a]}: wall time";
            plot.Add.Bars(cpu).LegendText = $"{allocators[a]}: CPU time";
            plot.Add.Bars(rss).LegendText = $"{allocators[a]}: max RSS";
        }

        var same = plot.Add.HorizontalLine(1.0, 1.5f, Colors.Black);
        same.LegendText = $"{reference} (1.0×, the time goal)";
        var rssGoal = plot.Add.HorizontalLine(1.1, 1.5f, Colors.Gray, LinePattern.Dashed);
        rssGoal.LegendText = "RSS goal (1.1×)";
        var xTicks = new ScottPlot.TickGenerators.NumericManual();
        for (int p = 0; p < programs.Count; p++)
        {
            xTicks.AddMajor((p * groupWidth) + ((3 * allocators.Count) - 1) / 2.0, programs[p]);
        }

        plot.Axes.Bottom.TickGenerator = xTicks;
        plot.Axes.Bottom.MajorTickStyle.Length = 0;
        plot.Axes.SetLimits(-1, Math.Max(programs.Count * groupWidth - 1, 1), 0, top);
        plot.Grid.XAxisStyle.MajorLineStyle.Width = 0;
        plot.Title(string.Create(CultureInfo.InvariantCulture, $"buddy bench --programs: ratio to {reference} in the same run (lower is better)\n{subtitle}"));
        plot.YLabel($"× {reference}");
        plot.ShowLegend(Edge.Right);
        plot.SavePng(path, Math.Max(1100, programs.Count * groupWidth * 24 + 350), 600);
    }
}
