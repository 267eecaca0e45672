namespace BuddySystem.Cli.Bench;

/// <summary>What <c>buddy bench</c> was asked to run.</summary>
/// <param name="Workloads">W1..W6, in order.</param>
/// <param name="Allocators">The allocators, in table order.</param>
/// <param name="Runs">Timed runs per case (the median is reported).</param>
/// <param name="Scale">Full (docs/benchmarks.md) or quick operation counts.</param>
/// <param name="JsonPath">Where to write the JSON, or null.</param>
/// <param name="PlotPath">Where to write the PNG chart, or null.</param>
internal sealed record BenchOptions(IReadOnlyList<string> Workloads, IReadOnlyList<BenchAllocatorEntry> Allocators, int Runs, BenchScale Scale, string? JsonPath, string? PlotPath);
