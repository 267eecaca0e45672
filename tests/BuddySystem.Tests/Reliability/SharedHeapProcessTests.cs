using System.Diagnostics;
using BuddySystem.Cli.Commands;
using BuddySystem.Testing;

namespace BuddySystem.Tests.Reliability;

/// <summary>SharedHeap across real processes: the <c>buddy</c> CLI's hidden <c>shm-worker</c> command allocates and frees
/// patterned blocks into its own slots of the root area's table, several at once, or until it is SIGKILLed.</summary>
public sealed unsafe class SharedHeapProcessTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("shm-proc-").FullName;

    public void Dispose() => Directory.Delete(_dir, true);

    private static Process StartWorker(string path, int worker, int workers, long ops)
    {
        string cli = Path.Combine(AppContext.BaseDirectory, "buddy.dll");
        var start = new ProcessStartInfo("dotnet") { RedirectStandardError = true, RedirectStandardOutput = true, UseShellExecute = false };
        foreach (string arg in new[] { cli, "shm-worker", path, worker.ToString(System.Globalization.CultureInfo.InvariantCulture), workers.ToString(System.Globalization.CultureInfo.InvariantCulture), ops.ToString(System.Globalization.CultureInfo.InvariantCulture) })
        {
            start.ArgumentList.Add(arg);
        }

        return Process.Start(start)!;
    }

    /// <summary>Checks that the allocated blocks are exactly those named by non-zero slots; returns how many.</summary>
    private static int CheckSlotsMatchBlocks(SharedHeap heap, bool patterns)
    {
        var allocated = heap.Blocks().Where(b => b.Allocated).Select(b => b.Offset).ToHashSet();
        var named = new HashSet<ulong>();
        for (int i = 0; i < heap.RootSize / 8; i++)
        {
            ulong offset = *(ulong*)heap.Pointer(heap.RootOffset + ((ulong)i * 8));
            if (offset == 0)
            {
                continue;
            }

            Assert.True(named.Add(offset), $"offset {offset} is named by two slots");
            Assert.True(allocated.Contains(offset), $"slot {i} names {offset}, which is not allocated");
            Assert.Equal(ShmWorkerCommand.SizeFor(i), heap.SizeOf(offset));
            if (patterns)
            {
                Assert.Equal(-1, BlockPattern.FirstMismatch(heap.Pointer(offset), (nuint)ShmWorkerCommand.SizeFor(i), ShmWorkerCommand.CookieFor(i, offset)));
            }
        }

        Assert.True(allocated.SetEquals(named), $"{allocated.Count} blocks allocated, {named.Count} named by slots");
        return named.Count;
    }

    [Fact]
    public void Workers_FourProcessesAtOnce_ZeroCorruptions()
    {
        if (!OperatingSystem.IsLinux())
        {
            return;
        }

        string path = Path.Combine(_dir, "h");
        using var heap = SharedHeap.Create(path, 4 << 20);
        var workers = Enumerable.Range(0, 4).Select(w => StartWorker(path, w, 4, 20_000)).ToList();
        foreach (Process worker in workers)
        {
            Assert.True(worker.WaitForExit(120_000), "a worker did not finish");
            Assert.True(worker.ExitCode == 0, $"worker exit {worker.ExitCode}: {worker.StandardError.ReadToEnd()}");
            worker.Dispose();
        }

        heap.Validate();
        Assert.Equal(0, heap.Recoveries);
        CheckSlotsMatchBlocks(heap, patterns: true);
        HeapStats stats = heap.Stats;
        Assert.Equal(80_000, (2 * stats.Allocations) - stats.LiveBlocks); // every operation was an allocation or a free
    }

    [Fact]
    public void Workers_KilledAtRandomMoments_SlotsNameExactlyTheAllocatedBlocks()
    {
        if (!OperatingSystem.IsLinux())
        {
            return;
        }

        string path = Path.Combine(_dir, "k");
        SharedHeap.Create(path, 4 << 20).Dispose();
        var random = new Random(14);
        int checkedBlocks = 0;
        for (int kill = 0; kill < 12; kill++)
        {
            // Two workers at once, killed together after 300-700 ms: late enough to be past start-up, inside the loop.
            var workers = new[] { StartWorker(path, 0, 2, 0), StartWorker(path, 1, 2, 0) };
            Thread.Sleep(300 + random.Next(400));
            foreach (Process worker in workers)
            {
                worker.Kill();
                worker.WaitForExit();
                worker.Dispose();
            }

            using var heap = SharedHeap.Open(path);
            heap.Validate();
            checkedBlocks += CheckSlotsMatchBlocks(heap, patterns: false);
        }

        Assert.True(checkedBlocks > 0, "the workers were killed before they allocated anything");
    }
}
