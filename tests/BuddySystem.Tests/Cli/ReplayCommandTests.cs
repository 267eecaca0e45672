using System.IO.Compression;
using System.Text;
using System.Text.Json;
using BuddySystem.Cli.Bench;
using BuddySystem.Cli.Commands;
using BuddySystem.Cli.Replay;
using BuddySystem.Cli.Traces;

namespace BuddySystem.Tests;

public sealed class ReplayCommandTests : IDisposable
{
    private readonly string _directory = Directory.CreateTempSubdirectory("buddy-replay-").FullName;

    public void Dispose() => Directory.Delete(_directory, recursive: true);

    private string WriteTrace(string text, bool gzip = false)
    {
        string path = Path.Combine(_directory, $"t{Guid.NewGuid():N}.trace");
        using var file = File.Create(path);
        using Stream target = gzip ? new GZipStream(file, CompressionLevel.Fastest) : file;
        target.Write(Encoding.UTF8.GetBytes(text));
        return path;
    }

    // A generated trace: blocks of 1..5000 bytes, reallocations, ids reused after their free.
    private static string GeneratedTrace(int ops)
    {
        var text = new StringBuilder("# generated\n");
        var random = new Random(42);
        var live = new List<int>();
        int nextId = 0;
        for (int i = 0; i < ops; i++)
        {
            int dice = random.Next(10);
            if (live.Count == 0 || dice < 5)
            {
                int id = nextId++ % 700;
                if (live.Contains(id))
                {
                    continue;
                }

                live.Add(id);
                text.Append($"a {id} {random.Next(1, 5000)} {(dice == 0 ? 64 : 16)}\n");
            }
            else if (dice < 9)
            {
                int index = random.Next(live.Count);
                text.Append($"f {live[index]}\n");
                live.RemoveAt(index);
            }
            else
            {
                text.Append($"r {live[random.Next(live.Count)]} {random.Next(1, 9000)}\n");
            }
        }

        return text.ToString();
    }

    [Fact]
    public void Run_GeneratedGzipTrace_VerifiesOnEveryAllocatorAndWritesJson()
    {
        string trace = WriteTrace(GeneratedTrace(5000), gzip: true);
        string json = Path.Combine(_directory, "r.json");
        var output = new StringWriter();
        string markdown = Path.Combine(_directory, "r.md");
        int exit = ReplayCommand.Run(BenchTestConsole.Create(output), trace, ["buddy-heap", "glibc", "native-memory"], null, 1, json, markdown);

        Assert.Equal(0, exit);
        using JsonDocument document = JsonDocument.Parse(File.ReadAllText(json));
        JsonElement root = document.RootElement;
        Assert.Equal(trace, root.GetProperty("trace").GetString());
        long ops = root.GetProperty("ops").GetInt64();
        Assert.Equal(TraceReader.Read(trace).Count(), ops);
        var results = root.GetProperty("results").EnumerateArray().ToList();
        Assert.Equal(["buddy-heap", "glibc", "native-memory"], results.Select(r => r.GetProperty("allocator").GetString()));
        long peak = results[0].GetProperty("peak_user_bytes").GetInt64();
        foreach (JsonElement r in results)
        {
            Assert.True(r.GetProperty("verified").GetBoolean());
            Assert.Equal(0, r.GetProperty("failed").GetInt64());
            Assert.True(r.GetProperty("ns_per_op").GetDouble() > 0);
            Assert.Equal(peak, r.GetProperty("peak_user_bytes").GetInt64());
        }

        // Buddy blocks are powers of two: at least the requested bytes, at most twice; the footprint is within the arena.
        long allocated = results[0].GetProperty("peak_allocated_bytes").GetInt64();
        Assert.InRange(allocated, peak, 2 * peak);
        Assert.InRange(results[0].GetProperty("footprint_bytes").GetInt64(), 1, root.GetProperty("heap_size").GetInt64());
        Assert.Equal(JsonValueKind.Null, results[2].GetProperty("peak_allocated_bytes").ValueKind);
        Assert.False(results[1].TryGetProperty("footprint_bytes", out _));
        Assert.Contains("| native-memory | ", File.ReadAllText(markdown), StringComparison.Ordinal);
    }

    [LinuxFact]
    public void Run_SharedHeap_VerifiesEveryBlockAndAllocatesAsBuddyHeapDoes()
    {
        string trace = WriteTrace(GeneratedTrace(3000), gzip: false);
        string json = Path.Combine(_directory, "s.json");

        Assert.Equal(0, ReplayCommand.Run(BenchTestConsole.Create(new StringWriter()), trace, ["shared-heap", "buddy-heap"], null, 1, json, null));

        using JsonDocument document = JsonDocument.Parse(File.ReadAllText(json));
        var results = document.RootElement.GetProperty("results").EnumerateArray().ToList();
        Assert.Equal(["shared-heap", "buddy-heap"], results.Select(r => r.GetProperty("allocator").GetString()));
        Assert.All(results, r => Assert.True(r.GetProperty("verified").GetBoolean()));
        Assert.All(results, r => Assert.Equal(0, r.GetProperty("failed").GetInt64()));
        // The same block sizes (powers of two from 16 B): the same peak of allocated bytes.
        Assert.Equal(results[1].GetProperty("peak_allocated_bytes").GetInt64(), results[0].GetProperty("peak_allocated_bytes").GetInt64());
    }

    [Fact]
    public void Run_HandWrittenTrace_ReportsExactPeaksAndHonestFailures()
    {
        // Peak requested: 100 + 3000 + 5000 (the realloc) = 8100; buddy blocks 128 + 4096 + 8192.
        string trace = WriteTrace("a 1 100 16\na 2 3000 16\nr 2 5000\na 3 8000 16\nf 1\nf 2\nf 3\n");
        string json = Path.Combine(_directory, "r.json");
        int exit = ReplayCommand.Run(BenchTestConsole.Create(new StringWriter()), trace, ["buddy-heap"], 8192, 1, json);

        Assert.Equal(0, exit);
        using JsonDocument document = JsonDocument.Parse(File.ReadAllText(json));
        JsonElement r = document.RootElement.GetProperty("results")[0];
        Assert.Equal(8192, document.RootElement.GetProperty("heap_size").GetInt64());

        // In an 8 KiB arena the 8 KiB block for 5000 bytes cannot fit beside the 128-byte one; neither can the 8000.
        Assert.Equal(2, r.GetProperty("failed").GetInt64());
        Assert.Equal(3100, r.GetProperty("peak_user_bytes").GetInt64());
        Assert.Equal(128 + 4096, r.GetProperty("peak_allocated_bytes").GetInt64());
        Assert.True(r.GetProperty("verified").GetBoolean());
    }

    [Fact]
    public void Compile_HandWrittenTrace_DefaultHeapIsNextPowerOfTwoOfTwicePeakBlocks()
    {
        CompiledTrace trace = CompiledTrace.Compile(TraceReader.Read(new MemoryStream(Encoding.UTF8.GetBytes("a 1 100 16\na 2 3000 16\nr 2 5000\na 3 8000 16\n")), "t"), "t");
        Assert.Equal(13100UL, trace.PeakUserBytes);
        Assert.Equal(128UL + 8192 + 8192, trace.PeakBuddyBlockBytes);
        Assert.Equal(1UL << 20, trace.DefaultHeapSize);
        Assert.Equal(3, trace.Slots);
    }

    [Theory]
    [InlineData("a 1 8 8\nf 2\n", "2: 'f' frees id 2, which is not live")]
    [InlineData("a 1 8 8\na 1 8 8\n", "2: id 1 is allocated again while live (allocated at line 1)")]
    [InlineData("a 1 8 8\nr 9 8\n", "2: 'r' reallocates id 9, which is not live")]
    [InlineData("a 1 8 8\n\nzap\n", "3: unknown operation 'zap'")]
    [InlineData("a 1 18446744073709551615 16\n", "1: size 18446744073709551615")]
    [InlineData("a 2 100 16\nr 2 18446744073709551000\n", "2: size 18446744073709551000")]
    [InlineData("a 1 8 9223372036854775808\n", "alignment 9223372036854775808")]
    public void Run_BadTrace_ExitsWithTwoNamingTheLine(string text, string message)
    {
        var error = new StringWriter();
        int exit = BuddySystem.Cli.Program.Run(["replay", WriteTrace(text), "-a", "buddy-heap", "--heap", "1MiB", "--runs", "1"], error);
        Assert.Equal(2, exit);
        Assert.Contains(message, error.ToString(), StringComparison.Ordinal);
        Assert.Single(error.ToString().Split('\n', StringSplitOptions.RemoveEmptyEntries));
    }

    [Fact]
    public void RunVerified_AllocatorHandingOutOverlappingBlocks_ThrowsNamingTheBlock()
    {
        CompiledTrace trace = CompiledTrace.Compile(TraceReader.Read(new MemoryStream(Encoding.UTF8.GetBytes("a 1 64 16\na 2 64 16\nf 1\nf 2\n")), "overlap.trace"), "overlap.trace");
        var allocator = new OverlappingAllocator(new byte[256]);
        var error = Assert.Throws<ReplayVerificationException>(() => TraceReplayer.RunVerified(ref allocator, trace, null));
        Assert.Contains("block id 1", error.Message, StringComparison.Ordinal);
        Assert.Contains("line 3", error.Message, StringComparison.Ordinal);
    }

    /// <summary>A broken allocator: every block starts at the same address, so live blocks overlap.</summary>
    private readonly unsafe struct OverlappingAllocator(byte[] memory) : IBenchAllocator
    {
        private readonly GCHandleBox _box = new(memory);

        public static bool IsThreadSafe => false;

        public static bool IsArena => false;

        public nuint RegionStart => 0;

        public nuint Allocate(nuint size, nuint align) => _box.Address;

        public void Free(nuint block, nuint size, nuint align)
        {
        }

        public nuint Reallocate(nuint block, nuint size, nuint align, nuint newSize) => block;

        public nuint BlockSize(nuint block, nuint size, nuint align) => size;

        public void Dispose() => _box.Dispose();
    }

    private sealed class GCHandleBox(byte[] memory) : IDisposable
    {
        private System.Runtime.InteropServices.GCHandle _handle = System.Runtime.InteropServices.GCHandle.Alloc(memory, System.Runtime.InteropServices.GCHandleType.Pinned);

        public nuint Address => (nuint)_handle.AddrOfPinnedObject();

        public void Dispose() => _handle.Free();
    }

    /// <summary>Issue 32: piped to a file, Spectre took 80 columns and wrapped the table and the note under it.</summary>
    [LinuxFact]
    public void Buddy_OutputToAFile_KeepsLinesWhole()
    {
        string trace = WriteTrace("a 1 8 8\nf 1\n");
        string dll = Path.Combine(AppContext.BaseDirectory, "buddy.dll");

        var result = BuddySystem.Tests.Malloc.MallocTests.Run("dotnet", [dll, "replay", trace, "-a", "buddy-heap", "--runs", "1"], _directory, null);

        Assert.Equal(0, result.Exit);
        Assert.Contains(result.Output.Split('\n'), line => line.StartsWith("trace peak:", StringComparison.Ordinal) && line.TrimEnd().EndsWith("come from the verified pass.", StringComparison.Ordinal));
    }
}
