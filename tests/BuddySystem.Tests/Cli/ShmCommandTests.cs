using System.Globalization;
using BuddySystem.Cli;
using BuddySystem.Cli.Commands;
using BuddySystem.Diagnostics;

namespace BuddySystem.Tests.Cli;

/// <summary><c>buddy shm stat</c> and <c>buddy map --shared</c> on good and bad files.</summary>
public sealed class ShmCommandTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("buddy-shm-cli-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [LinuxFact]
    public void Stat_HeapWithTwoBlocks_PrintsItsStatsAndBuddyinfo()
    {
        string path = Path.Combine(_dir, "h");
        HeapStats expected;
        using (SharedHeap heap = SharedHeap.Create(path, 1 << 20))
        {
            heap.Allocate(100);   // a 128-byte block
            heap.AllocateInto(1000, 16, heap.RootOffset); // a 1 KiB block named by the first root slot
            expected = heap.Stats;
        }

        var output = new StringWriter();
        var error = new StringWriter();

        Assert.Equal(0, ShmStatCommand.Run(path, output, error));

        string text = output.ToString();
        Assert.Equal(string.Empty, error.ToString());
        Assert.Contains("capacity            1 MiB (1,048,576 bytes), blocks of 16 B (order 0) to 1 MiB (order 16)", text, StringComparison.Ordinal);
        Assert.Contains("(1,152 bytes) in 2 live blocks", text, StringComparison.Ordinal);
        Assert.Contains(string.Create(CultureInfo.InvariantCulture, $"({(1 << 20) - 1152:N0} bytes)"), text, StringComparison.Ordinal);
        Assert.Contains("largest free block  512 KiB", text, StringComparison.Ordinal);
        Assert.Contains("1 of 512 slots non-zero", text, StringComparison.Ordinal);
        Assert.Contains("2 allocations, 0 failed, 0 recoveries", text, StringComparison.Ordinal);
        Assert.Contains("validate            OK", text, StringComparison.Ordinal);
        string buddyinfo = "buddyinfo " + string.Join(' ', expected.FreeBlocksByOrder);
        Assert.Contains(buddyinfo + Environment.NewLine, text, StringComparison.Ordinal);
        // Order 16 (1 MiB) has no free block: U = 1, and F > 0 (a 1 MiB request fails for fragmentation, not lack of memory).
        Assert.Matches(@"\n\s+16  1 MiB\s+0\s+1\.000\s+0\.\d{3}", text);
        // Best fit split the 1 MiB down to 128 B once: one free block of each order 3 to 15 except the 1 KiB one taken.
        Assert.Equal([0, 0, 0, 1, 1, 1, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0], expected.FreeBlocksByOrder);
        // Order 0 has no free block but larger ones serve it: U = 0, F = -1.
        Assert.Matches(@"\n\s+0  16 B\s+0\s+0\.000\s+-1\.000", text);
    }

    [Fact]
    public void Stat_MissingFile_OneLineOnStderrAndExitTwo() => AssertBadFile(Path.Combine(_dir, "none"), "does not exist");

    [Fact]
    public void Stat_NotAHeap_OneLineOnStderrAndExitTwo()
    {
        string path = Path.Combine(_dir, "text");
        File.WriteAllText(path, "hello, this is not a heap file at all; it has no magic at its start");
        AssertBadFile(path, "is not a shared heap");
    }

    [LinuxFact]
    public void Stat_TruncatedHeap_OneLineOnStderrAndExitTwo()
    {
        string path = Path.Combine(_dir, "cut");
        SharedHeap.Create(path, 1 << 20).Dispose();
        using (var file = new FileStream(path, FileMode.Open))
        {
            file.SetLength(file.Length / 2);
        }

        AssertBadFile(path, "is truncated");
    }

    [Fact]
    public void Stat_NoFileArgument_OneLineOnStderrAndExitTwo()
    {
        var error = new StringWriter();

        Assert.Equal(2, Program.Run(["shm", "stat"], error));

        string[] lines = error.ToString().Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Single(lines);
        Assert.StartsWith("buddy shm stat: ", lines[0], StringComparison.Ordinal);
    }

    [LinuxFact]
    public void Program_ShmStatOfAMissingFile_ExitsTwo()
    {
        Assert.Equal(2, Program.Run(["shm", "stat", Path.Combine(_dir, "none")], TextWriter.Null));
    }

    [LinuxFact]
    public void SnapshotOf_SharedHeap_BlocksCoverTheHeapAndMatchItsStats()
    {
        using SharedHeap heap = SharedHeap.Create(Path.Combine(_dir, "s"), 64 << 10);
        ulong small = heap.Allocate(16);
        ulong large = heap.Allocate(4096, 4096);
        heap.Free(heap.Allocate(200));

        HeapSnapshot snapshot = HeapSnapshot.Of(heap);

        HeapStats stats = heap.Stats;
        Assert.Equal(heap.DataOffset, snapshot.BaseAddress);
        Assert.Equal(heap.Capacity, snapshot.TotalBytes);
        Assert.Equal(stats.FreeBlocksByOrder, snapshot.FreeBlocksByOrder);
        Assert.Equal(stats.LargestFreeBlock, snapshot.LargestFreeBlock);
        Assert.Equal(
            [(small, 16UL), (large, 4096UL)],
            snapshot.Blocks.Where(b => b.State == BlockState.Allocated).Select(b => (b.Offset + snapshot.BaseAddress, b.Size)).ToArray());
        ulong end = 0;
        foreach (HeapBlock block in snapshot.Blocks)
        {
            Assert.Equal(end, block.Offset); // no gaps: free blocks are the maximal ones between the allocated
            Assert.Equal(0UL, block.Offset % block.Size);
            end = block.End;
        }

        Assert.Equal(heap.Capacity, end);
    }

    [LinuxFact]
    public void Map_SharedHeapFile_DrawsItsBlocks()
    {
        string path = Path.Combine(_dir, "m");
        using (SharedHeap heap = SharedHeap.Create(path, 256 << 10))
        {
            for (int i = 0; i < 3; i++)
            {
                heap.AllocateInto(1000, 16, heap.RootOffset + ((ulong)i * 8));
            }
        }

        string svg = Path.Combine(_dir, "m.svg");

        Assert.Equal(0, MapCommand.Create().Parse(["--shared", path, "--out", svg]).Invoke());

        string text = File.ReadAllText(svg);
        Assert.Contains("<svg ", text, StringComparison.Ordinal);
        Assert.Contains("m, a 256 KiB SharedHeap", text, StringComparison.Ordinal);
        Assert.Contains("allocated 3 KiB in 3 blocks ", text, StringComparison.Ordinal);
    }

    [LinuxTheory]
    [InlineData("none")]
    [InlineData("text")]
    public void Map_SharedBadFile_ExitsTwo(string name)
    {
        string path = Path.Combine(_dir, name);
        if (name == "text")
        {
            File.WriteAllText(path, "not a heap, not a heap, not a heap");
        }

        Assert.Equal(2, Program.Run(["map", "--shared", path, "--out", Path.Combine(_dir, "x.svg")], TextWriter.Null));
        Assert.False(File.Exists(Path.Combine(_dir, "x.svg")));
    }

    /// <summary>Issue 32: the refusal named the library's SharedHeapOptions.AllowOtherWriters, and map --shared had no flag.</summary>
    [LinuxTheory]
    [InlineData("shm", "stat", "{heap}")]
    [InlineData("map", "--shared", "{heap}", "--out", "{svg}")]
    public void SharedHeap_GroupWritableFile_RefusalNamesTheFlagThatOpensIt(params string[] args)
    {
        string path = Path.Combine(_dir, "g");
        SharedHeap.Create(path, 1 << 20, new SharedHeapOptions { FileMode = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead | UnixFileMode.GroupWrite }).Dispose();
        string svg = Path.Combine(_dir, "g.svg");
        string[] resolved = [.. args.Select(a => a == "{heap}" ? path : a == "{svg}" ? svg : a)];
        var error = new StringWriter();

        Assert.Equal(2, Program.Run(resolved, error));
        Assert.Contains("give --allow-other-writers to open it anyway", error.ToString(), StringComparison.Ordinal);
        Assert.DoesNotContain("SharedHeapOptions", error.ToString(), StringComparison.Ordinal);

        Assert.Equal(0, Program.Run([.. resolved, "--allow-other-writers"], TextWriter.Null));
    }

    [Fact]
    public void Map_AllowOtherWritersWithoutShared_Refused()
    {
        var error = new StringWriter();

        Assert.Equal(2, Program.Run(["map", "--allow-other-writers", "--out", Path.Combine(_dir, "x.svg")], error));
        Assert.Contains("--allow-other-writers does not go with", error.ToString(), StringComparison.Ordinal);
    }

    [Fact]
    public void Map_SharedWithTrace_ExitsTwo()
        => Assert.Equal(2, Program.Run(["map", "--shared", Path.Combine(_dir, "h"), "--workload", "W3", "--out", Path.Combine(_dir, "x.svg")], TextWriter.Null));

    [LinuxFact]
    public void Soak_FourKills_SurvivesAndReportsTheFigures()
    {
        string path = Path.Combine(_dir, "soak.heap");
        var output = new StringWriter();

        Assert.Equal(0, ShmSoakCommand.Run(output, TextWriter.Null, kills: 4, workers: 2, 1UL << 20, seed: 7, maxDelayMs: 20, new FileInfo(path)));

        string text = output.ToString();
        Assert.Contains("kills survived: 4 (2 rounds of 2 workers", text, StringComparison.Ordinal);
        Assert.Contains("0 lost, 0 doubly owned", text, StringComparison.Ordinal);
        Assert.Matches(@"blocks checked: \d", text);
        Assert.Contains("recovery time (Open that recovered): ", text, StringComparison.Ordinal);
        Assert.True(File.Exists(path), "--file keeps the heap");
        Assert.Equal(0, ShmStatCommand.Run(path, TextWriter.Null, TextWriter.Null));
    }

    [LinuxFact]
    public void Soak_FileThatExists_ExitsTwoAndLeavesIt()
    {
        string path = Path.Combine(_dir, "exists");
        File.WriteAllText(path, "x");
        Assert.Equal(2, Program.Run(["shm", "soak", "--file", path, "--kills", "1"], TextWriter.Null));
        Assert.Equal("x", File.ReadAllText(path));
    }

    private static void AssertBadFile(string path, string why)
    {
        var error = new StringWriter();
        var output = new StringWriter();

        Assert.Equal(2, ShmStatCommand.Run(path, output, error));

        string[] lines = error.ToString().Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Single(lines);
        Assert.StartsWith("buddy shm stat: ", lines[0], StringComparison.Ordinal);
        Assert.Contains(path, lines[0], StringComparison.Ordinal);
        Assert.Contains(why, lines[0], StringComparison.Ordinal);
        Assert.Equal(string.Empty, output.ToString());
    }
}
