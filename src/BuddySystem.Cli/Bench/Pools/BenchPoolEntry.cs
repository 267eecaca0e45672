using BuddySystem.Cli.Commands;
using BuddySystem.Cli.Replay;

namespace BuddySystem.Cli.Bench.Pools;

/// <summary>
/// A buffer pool that <c>buddy bench -w pool</c> measures. Each run is a child process (<c>buddy bench-pool-run</c>), so
/// its peak RSS is that pool's alone: the shared pools (<see cref="System.Buffers.ArrayPool{T}.Shared"/>) keep what they
/// pooled for the life of the process, and in one process each row would carry the rows before it.
/// </summary>
internal abstract class BenchPoolEntry(string id, string description) : BenchAllocatorEntry(id, description)
{
    public override bool IsThreadSafe => true;

    public override bool IsArena => false;

    public override string? Unavailable => null;

    public override bool Replays => false;

    // The child warms itself up (a short run before the timed one); a warm-up child would only start a process.
    public override bool NeedsWarmUp => false;

    public override bool Runs(string workload) => workload == "pool";

    /// <summary>Runs the workload in this process: a warm-up on the same threads, then the timed run.</summary>
    public abstract PoolMeasurement RunHere(int threads, int opsPerThread);

    public override Measurement Measure(WorkloadCase workload, BenchScale scale, nuint heapSize)
    {
        ProcessStartInfo start = ToolProcess.StartInfo(BenchPoolRunCommand.Name, Id, Str(workload.Value), Str(scale.PoolOpsPerThread));

        // Tier up at once rather than after the runtime's 100 ms quiet period: a server's pool runs optimised code, and
        // CoreLib's ArrayPool starts precompiled while ours would spend the warm-up, on a loaded machine the whole run, in
        // tier-0 code (measured: 2.2× slower).
        start.Environment["DOTNET_TC_CallCountingDelayMs"] = "0";
        using Process child = Process.Start(start) ?? throw new InvalidOperationException($"cannot start {start.FileName}");
        Task<string> error = child.StandardError.ReadToEndAsync();
        string output = child.StandardOutput.ReadToEnd();
        child.WaitForExit();
        string? line = output.Split('\n').FirstOrDefault(l => l.StartsWith("done ", StringComparison.Ordinal));
        if (child.ExitCode != 0 || line is null)
        {
            throw new InvalidOperationException($"{Id}: the pool run failed (exit {child.ExitCode}): {error.Result.Trim()}");
        }

        return BenchPoolRunCommand.Parse(line);
    }

    public override ReplayPass Replay(CompiledTrace trace, nuint heapSize, bool verify, Action<long>? progress) =>
        throw new NotSupportedException($"{Id} is a buffer pool: it rents buffers, it does not replay allocation traces.");

    private static string Str(long value) => value.ToString(CultureInfo.InvariantCulture);
}
