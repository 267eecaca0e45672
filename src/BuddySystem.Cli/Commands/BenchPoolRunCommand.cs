using BuddySystem.Cli.Bench;
using BuddySystem.Cli.Bench.Pools;

namespace BuddySystem.Cli.Commands;

/// <summary>
/// <c>buddy bench-pool-run POOL THREADS OPS</c> (hidden): one run of the <c>pool</c> workload in a process of its own, for
/// <c>buddy bench -w pool</c>. Writes <c>done OPS NS FAILED GC-BYTES PEAK-RSS-BYTES FALLBACKS</c>.
/// </summary>
internal static class BenchPoolRunCommand
{
    /// <summary>The command's name.</summary>
    public const string Name = "bench-pool-run";

    internal static Command Create()
    {
        var pool = new Argument<string>("pool");
        var threads = new Argument<int>("threads");
        var ops = new Argument<int>("ops");
        var command = new Command(Name, "Child process of `buddy bench -w pool`.") { pool, threads, ops };
        command.Hidden = true;
        command.SetAction(result => Run(result.GetValue(pool)!, result.GetValue(threads), result.GetValue(ops), Console.Out));
        return command;
    }

    internal static int Run(string poolId, int threads, int ops, TextWriter output)
    {
        if (BenchAllocators.Find(poolId) is not BenchPoolEntry entry)
        {
            throw new BadInputException($"unknown pool '{poolId}' (known: {string.Join(", ", BenchAllocators.All.OfType<BenchPoolEntry>().Select(p => p.Id))})");
        }

        if (threads < 1 || ops < 1)
        {
            throw new BadInputException("threads and ops must be at least 1");
        }

        PoolMeasurement run = entry.RunHere(threads, ops);
        output.WriteLine(string.Join(' ', "done", Str(run.Ops), Str(run.ElapsedNs), Str(run.Failed), Str(run.AllocatedBytes), Str(PeakRssBytes()), Str(run.LocalFallbacks)));
        return 0;
    }

    /// <summary>Reads the line <see cref="Run"/> writes.</summary>
    /// <exception cref="FormatException">It is not such a line.</exception>
    internal static Measurement Parse(string line)
    {
        string[] fields = line.Trim().Split(' ');
        if (fields.Length != 7 || fields[0] != "done")
        {
            throw new FormatException($"not a pool run result: '{line}'");
        }

        long Field(int i) => long.Parse(fields[i], CultureInfo.InvariantCulture);
        long ticks = (long)(Field(2) * (Stopwatch.Frequency / 1e9));
        return new Measurement(Field(1), ticks, Field(3), GcBytes: Field(4), PeakRssBytes: Field(5));
    }

    // VmHWM: the process's peak resident set; 0 where /proc is missing.
    private static long PeakRssBytes()
    {
        try
        {
            string? line = File.ReadLines("/proc/self/status").FirstOrDefault(l => l.StartsWith("VmHWM:", StringComparison.Ordinal));
            return line is null ? 0 : long.Parse(line["VmHWM:".Length..].Trim().Split(' ')[0], CultureInfo.InvariantCulture) * 1024;
        }
        catch (IOException)
        {
            return 0;
        }
    }

    private static string Str(long value) => value.ToString(CultureInfo.InvariantCulture);
}
