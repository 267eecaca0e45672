using System.Collections.Concurrent;
using System.Text.Json;
using BuddySystem.Cli.Bench;
using BuddySystem.Cli.Bench.Pools;
using BuddySystem.Cli.Commands;

namespace BuddySystem.Tests;

public class PoolWorkloadTests
{
    [Fact]
    public void Mix_Weights_AddUpTo100From256BytesTo1MiB()
    {
        Assert.Equal(100, PoolWorkload.Mix.Sum(m => m.Weight));
        Assert.Equal(256, PoolWorkload.Mix.Min(m => m.Bytes));
        Assert.Equal(1 << 20, PoolWorkload.Mix.Max(m => m.Bytes));
        var counts = Enumerable.Range(0, 100).GroupBy(i => PoolWorkload.SizeFor((ulong)i)).ToDictionary(g => g.Key, g => g.Count());
        Assert.All(PoolWorkload.Mix, m => Assert.Equal(m.Weight, counts[m.Bytes]));
    }

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(4)]
    public void Run_TrackingPool_ReturnsEveryBufferOnceAndSomeOnAnotherThread(int threads)
    {
        var tracker = new PoolTracker();
        PoolMeasurement run = PoolWorkload.Run(new TrackingPool(tracker), threads, 20_000);

        Assert.Equal(threads * 20_000L, run.Ops);
        Assert.Equal(0, run.Failed);
        Assert.Equal(run.Ops, tracker.Rents);
        Assert.Equal(tracker.Rents, tracker.Returns);
        Assert.Empty(tracker.Live);
        Assert.Equal(0, tracker.DoubleReturns);

        // One return in eight is meant for the returning thread; it takes them unless its ring is full.
        double remote = (double)(tracker.RemoteReturns + run.LocalFallbacks) / tracker.Returns;
        Assert.InRange(remote, 0.09, 0.16);
        Assert.True(tracker.RemoteReturns > 0);
    }

    [Fact]
    public void Parse_DoneLine_ReadsEveryField()
    {
        Measurement m = BenchPoolRunCommand.Parse("done 400000 2000000 3 480 52428800 7");
        Assert.Equal(400_000, m.Ops);
        Assert.Equal(3, m.Failed);
        Assert.Equal(480, m.GcBytes);
        Assert.Equal(52_428_800, m.PeakRssBytes);
        Assert.Equal(5.0, m.NsPerOp, 3);
        Assert.Throws<FormatException>(() => BenchPoolRunCommand.Parse("ready"));
    }

    [Fact]
    public void RunCommand_ArrayPool_WritesADoneLineWithThePeakRss()
    {
        var output = new StringWriter();
        Assert.Equal(0, BenchPoolRunCommand.Run("array-pool", 2, 10_000, output));
        Measurement m = BenchPoolRunCommand.Parse(output.ToString().Trim());
        Assert.Equal(20_000, m.Ops);
        Assert.Equal(0, m.Failed);
        Assert.True(m.PeakRssBytes > 1 << 20);
    }

    [Fact]
    public void Bench_PoolQuick_WritesTheFourPoolRowsPerThreadCountWithNoFailure()
    {
        string json = Path.Combine(Path.GetTempPath(), $"bench-pool-{Guid.NewGuid():N}.json");
        string markdown = Path.ChangeExtension(json, ".md");
        var console = new StringWriter();
        try
        {
            // No -a: every allocator, but only the pools run the pool workload.
            int exit = BenchCommand.Run(BenchTestConsole.Create(console), ["pool"], null, 1, quick: true, json, null, markdown);

            Assert.Equal(0, exit);
            using JsonDocument document = JsonDocument.Parse(File.ReadAllText(json));
            var results = document.RootElement.GetProperty("results").EnumerateArray().ToList();
            string[] pools = ["buddy-pool", "array-pool", "memory-pool", "kestrel-pool"];
            Assert.Equal(
                from threads in new[] { "1", "2", "4" } from pool in pools select (pool, threads),
                results.Select(r => (r.GetProperty("allocator").GetString()!, r.GetProperty("param").GetString()!)));
            Assert.All(results, r =>
            {
                Assert.Equal("pool", r.GetProperty("workload").GetString());
                Assert.Equal(0, r.GetProperty("failed").GetInt64());
                Assert.Equal(BuddySystem.Cli.Bench.BenchScale.Quick.PoolOpsPerThread * long.Parse(r.GetProperty("param").GetString()!, System.Globalization.CultureInfo.InvariantCulture), r.GetProperty("ops").GetInt64());
                Assert.True(r.GetProperty("ops_per_sec").GetDouble() > 0);
                Assert.True(r.GetProperty("gc_bytes_per_op").GetDouble() >= 0);

                // Each run had a process to itself: at least the runtime is resident.
                Assert.True(r.GetProperty("peak_rss_bytes").GetInt64() > 8 << 20);
            });

            string tables = File.ReadAllText(markdown);
            Assert.Contains("| allocator | threads = 1 | threads = 2 | threads = 4 | Mops/s 1 / 2 / 4 threads (scaling 2:1, 4:2) | GC B/op 1 / 2 / 4 | peak RSS MiB 1 / 2 / 4 | failed |", tables, StringComparison.Ordinal);
            Assert.Contains("| array-pool | ", tables, StringComparison.Ordinal);
            Assert.Contains("(1.00×)", tables, StringComparison.Ordinal);
            Assert.DoesNotContain("| glibc |", tables, StringComparison.Ordinal);
        }
        finally
        {
            File.Delete(json);
            File.Delete(markdown);
        }
    }

    private sealed class PoolTracker
    {
        private long _rents;
        private long _returns;
        private long _remoteReturns;
        private long _doubleReturns;

        public ConcurrentDictionary<object, int> Live { get; } = new(ReferenceEqualityComparer.Instance);

        public long Rents => Interlocked.Read(ref _rents);

        public long Returns => Interlocked.Read(ref _returns);

        public long RemoteReturns => Interlocked.Read(ref _remoteReturns);

        public long DoubleReturns => Interlocked.Read(ref _doubleReturns);

        public object Rent(int size)
        {
            var buffer = new byte[size];
            Live[buffer] = Environment.CurrentManagedThreadId;
            Interlocked.Increment(ref _rents);
            return buffer;
        }

        public void Return(object buffer)
        {
            if (!Live.TryRemove(buffer, out int renter))
            {
                Interlocked.Increment(ref _doubleReturns);
                return;
            }

            Interlocked.Increment(ref _returns);
            if (renter != Environment.CurrentManagedThreadId)
            {
                Interlocked.Increment(ref _remoteReturns);
            }
        }
    }

    private readonly struct TrackingPool(PoolTracker tracker) : IBenchPool
    {
        public object Rent(int size) => tracker.Rent(size);

        public Span<byte> Bytes(object buffer, int size) => ((byte[])buffer).AsSpan(0, size);

        public void Return(object buffer) => tracker.Return(buffer);

        public void Dispose()
        {
        }
    }
}
