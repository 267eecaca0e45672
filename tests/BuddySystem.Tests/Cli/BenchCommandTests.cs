using System.Text.Json;
using BuddySystem.Cli.Bench;
using BuddySystem.Cli.Commands;

namespace BuddySystem.Tests;

public class BenchCommandTests
{
    [Fact]
    public void Run_QuickSmoke_WritesJsonOfTheDocumentedShapeAndAChart()
    {
        string json = Path.Combine(Path.GetTempPath(), $"bench-{Guid.NewGuid():N}.json");
        string png = Path.ChangeExtension(json, ".png");
        string markdown = Path.ChangeExtension(json, ".md");
        var output = new StringWriter();
        try
        {
            int exit = BenchCommand.Run(BenchTestConsole.Create(output), ["W1", "W4", "W6"], ["buddy-heap", "glibc"], 1, quick: true, json, png, markdown);

            Assert.Equal(0, exit);
            using JsonDocument document = JsonDocument.Parse(File.ReadAllText(json));
            JsonElement root = document.RootElement;
            Assert.False(string.IsNullOrEmpty(root.GetProperty("machine").GetString()));
            Assert.StartsWith(".NET", root.GetProperty("runtime").GetString(), StringComparison.Ordinal);
            var results = root.GetProperty("results").EnumerateArray().ToList();

            // W1 and W4 (4 sizes of n) on both allocators; W6 only on the arena.
            Assert.Equal(2 + 8 + 1, results.Count);
            foreach (JsonElement r in results)
            {
                Assert.True(r.GetProperty("ns_per_op").GetDouble() > 0);
                Assert.Equal(0, r.GetProperty("failed").GetInt64() - (r.GetProperty("workload").GetString() == "W6" ? BuddySystem.Cli.Bench.BenchScale.Quick.W6Rounds : 0));
                Assert.Contains(r.GetProperty("allocator").GetString(), new[] { "buddy-heap", "glibc" });
            }

            JsonElement w1 = results.Single(r => r.GetProperty("workload").GetString() == "W1" && r.GetProperty("allocator").GetString() == "buddy-heap");
            Assert.Equal("", w1.GetProperty("param").GetString());
            Assert.Equal(1_000_000, w1.GetProperty("ops").GetInt64());
            Assert.Equal(
                ["1024", "8192", "32768", "65536"],
                results.Where(r => r.GetProperty("workload").GetString() == "W4" && r.GetProperty("allocator").GetString() == "glibc").Select(r => r.GetProperty("param").GetString()));
            JsonElement w6 = results.Single(r => r.GetProperty("workload").GetString() == "W6");
            Assert.Equal("buddy-heap", w6.GetProperty("allocator").GetString());
            Assert.InRange(w6.GetProperty("efficiency").GetDouble(), 0.3, 1.0);

            byte[] header = File.ReadAllBytes(png)[..8];
            Assert.Equal(new byte[] { 0x89, (byte)'P', (byte)'N', (byte)'G', 0x0D, 0x0A, 0x1A, 0x0A }, header);
            Assert.Contains("W4", output.ToString(), StringComparison.Ordinal);
            string tables = File.ReadAllText(markdown);
            Assert.Contains("| allocator | n = 1024 | n = 8192 | n = 32768 | n = 65536 | failed |", tables, StringComparison.Ordinal);
            Assert.Contains("| glibc | ", tables, StringComparison.Ordinal);
            Assert.Contains("(1.00×)", tables, StringComparison.Ordinal);
        }
        finally
        {
            File.Delete(json);
            File.Delete(png);
            File.Delete(markdown);
        }
    }

    [Fact]
    public void Run_W5Quick_ReportsOpsPerSecondForThreadSafeAllocatorsOnly()
    {
        string json = Path.Combine(Path.GetTempPath(), $"bench-{Guid.NewGuid():N}.json");
        try
        {
            int exit = BenchCommand.Run(BenchTestConsole.Create(new StringWriter()), ["W5"], ["buddy-heap", "locked-heap"], 1, quick: true, json, null);
            Assert.Equal(0, exit);
            using JsonDocument document = JsonDocument.Parse(File.ReadAllText(json));
            var results = document.RootElement.GetProperty("results").EnumerateArray().ToList();
            Assert.Equal(["1", "2", "4"], results.Select(r => r.GetProperty("param").GetString()));
            Assert.All(results, r => Assert.Equal("locked-heap", r.GetProperty("allocator").GetString()));
            Assert.All(results, r => Assert.True(r.GetProperty("ops_per_sec").GetDouble() > 0));
            Assert.Equal(2L * BuddySystem.Cli.Bench.BenchScale.Quick.W5OpsPerThread, results[1].GetProperty("ops").GetInt64());

            // 32 MiB × threads: the threads' W3 live sets fit, so W5 measures scaling, not the failure path.
            Assert.All(results, r => Assert.Equal(0, r.GetProperty("failed").GetInt64()));
        }
        finally
        {
            File.Delete(json);
        }
    }

    [LinuxFact]
    public void Run_SharedHeapW3Quick_NextToLockedHeap_NoFailures()
    {
        string json = Path.Combine(Path.GetTempPath(), $"bench-{Guid.NewGuid():N}.json");
        try
        {
            Assert.Equal(0, BenchCommand.Run(BenchTestConsole.Create(new StringWriter()), ["W3"], ["shared-heap", "locked-heap"], 1, quick: true, json, null));

            using JsonDocument document = JsonDocument.Parse(File.ReadAllText(json));
            var results = document.RootElement.GetProperty("results").EnumerateArray().ToList();
            Assert.Equal(["locked-heap", "shared-heap"], results.Select(r => r.GetProperty("allocator").GetString())); // table order
            Assert.All(results, r => Assert.Equal(0, r.GetProperty("failed").GetInt64()));
            Assert.All(results, r => Assert.True(r.GetProperty("ns_per_op").GetDouble() > 0));
        }
        finally
        {
            File.Delete(json);
        }
    }

    [Fact]
    public void Run_MimallocMissing_RowSaysSoAndRatiosFallBackToGlibc()
    {
        var missing = new BenchAllocatorEntry<MallocAllocator<Libc>>("mimalloc", "stands in for a missing library", MallocAllocator<Libc>.Create, () => "libmimalloc.so.2 not found (test)");
        var options = new BenchOptions(["W1"], [BenchAllocators.Find("glibc")!, missing], 1, BenchScale.Quick, null, null);
        var output = new StringWriter();
        var console = BenchTestConsole.Create(output);

        List<BenchResult> results = BenchRunner.Run(options, console);
        BenchReport.WriteTables(console, options, results);

        Assert.Equal("glibc", Assert.Single(results).Allocator);
        Assert.Contains("not available: libmimalloc.so.2 not found (test)", output.ToString(), StringComparison.Ordinal);
        Assert.Contains("(1.00×)", output.ToString(), StringComparison.Ordinal);
        Assert.Contains("÷ glibc's ns/op", output.ToString(), StringComparison.Ordinal);
        string json = Path.Combine(Path.GetTempPath(), $"bench-{Guid.NewGuid():N}.json");
        try
        {
            BenchReport.WriteJson(json, options, results);
            using JsonDocument document = JsonDocument.Parse(File.ReadAllText(json));
            Assert.Equal("libmimalloc.so.2 not found (test)", document.RootElement.GetProperty("unavailable").GetProperty("mimalloc").GetString());
        }
        finally
        {
            File.Delete(json);
        }
    }
}
