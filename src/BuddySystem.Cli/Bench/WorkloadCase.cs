namespace BuddySystem.Cli.Bench;

/// <summary>One workload with its parameter: the size of W2, the n of W4, the threads of W5 and pool (0 for the others).</summary>
internal sealed record WorkloadCase(string Workload, int Value)
{
    /// <summary>The workloads of docs/benchmarks.md, in order.</summary>
    public static IReadOnlyList<string> Workloads { get; } = ["W1", "W2", "W3", "W4", "W5", "W6", "pool"];

    /// <summary>The parameter as the JSON and tables show it ("" when the workload has none).</summary>
    public string Param => Value == 0 ? "" : Value.ToString(CultureInfo.InvariantCulture);

    /// <summary>"W2 4096", "W3".</summary>
    public string Label => Value == 0 ? Workload : $"{Workload} {Param}";

    /// <summary>The cases of one workload.</summary>
    public static IEnumerable<WorkloadCase> For(string workload) => workload switch
    {
        "W2" => [new("W2", 16), new("W2", 64), new("W2", 256), new("W2", 4096)],
        "W4" => [new("W4", 1024), new("W4", 8192), new("W4", 32768), new("W4", 65536)],
        "W5" => [new("W5", 1), new("W5", 2), new("W5", 4)],
        "pool" => [new("pool", 1), new("pool", 2), new("pool", 4)],
        _ => [new(workload, 0)],
    };
}
