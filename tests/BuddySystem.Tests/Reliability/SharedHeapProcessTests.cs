using System.Diagnostics;
using BuddySystem.Cli.Commands;
using BuddySystem.Testing;

namespace BuddySystem.Tests.Reliability;

/// <summary>SharedHeap across real processes: the <c>buddy</c> CLI's hidden <c>shm-worker</c> command allocates and frees
/// patterned blocks into its own slots of the root area's table (<see cref="SharedHeapSlots"/>), several at once, or
/// until it is SIGKILLed (<see cref="SharedHeapKillRun"/>, the kit of <c>buddy shm soak</c>, which runs ≥ 1 000 kills).</summary>
public sealed class SharedHeapProcessTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("shm-proc-").FullName;

    public void Dispose() => Directory.Delete(_dir, true);

    [LinuxFact]
    public void Workers_FourProcessesAtOnce_ZeroCorruptions()
    {
        string path = Path.Combine(_dir, "h");
        using var heap = SharedHeap.Create(path, 4 << 20);
        var workers = Enumerable.Range(0, 4).Select(w => Process.Start(ShmWorkerCommand.StartInfo(path, w, 4, 20_000, (ulong)w + 14))!).ToList();
        foreach (Process worker in workers)
        {
            Assert.True(worker.WaitForExit(120_000), "a worker did not finish");
            Assert.True(worker.ExitCode == 0, $"worker exit {worker.ExitCode}: {worker.StandardError.ReadToEnd()}");
            worker.Dispose();
        }

        heap.Validate();
        Assert.Equal(0, heap.Recoveries);
        Assert.True(SharedHeapSlots.Check(heap, patterns: true) > 0);
        HeapStats stats = heap.Stats;
        Assert.Equal(80_000, (2 * stats.Allocations) - stats.LiveBlocks); // every operation was an allocation or a free
    }

    [LinuxFact]
    public void Workers_KilledAtRandomMoments_SlotsNameExactlyTheAllocatedBlocks()
    {
        string path = Path.Combine(_dir, "k");
        SharedHeap.Create(path, 4 << 20).Dispose();

        // Up to 200 ms after "ready": on a loaded machine a worker may not run at all for tens of milliseconds, and a run
        // whose workers all die before their first allocation checks nothing.
        SharedHeapKillResult result = SharedHeapKillRun.Run(
            path, kills: 24, workers: 2, TimeSpan.FromMilliseconds(200), seed: 14,
            (worker, workers, seed, crashAfter) => ShmWorkerCommand.StartInfo(path, worker, workers, 0, seed, crashAfter));

        Assert.Equal(24, result.Kills);
        Assert.Equal(12, result.InjectedKills);
        Assert.True(result.Recoveries > 0, "12 kills inside a change, none of them recovered"); // a step before the intent is published or after it is cleared needs none
        Assert.Equal(12, result.Rounds);
        Assert.True(result.BlocksChecked > 0, "the workers were killed before they allocated anything");
        Assert.Equal(12, result.RecoveryTimes.Count + result.OpenTimes.Count);
    }

    [LinuxFact]
    public unsafe void Check_LostAndDoublyOwnedBlocks_AreReported()
    {
        using var heap = SharedHeap.Create(Path.Combine(_dir, "c"), 1 << 20);
        ulong* slots = (ulong*)heap.Pointer(heap.RootOffset);
        ulong named = heap.AllocateInto(SharedHeapSlots.SizeFor(0), 16, heap.RootOffset);
        Assert.Equal(1, SharedHeapSlots.Check(heap, patterns: false));

        ulong lost = heap.Allocate(16);
        Assert.Contains("lost", Assert.Throws<SoakFailureException>(() => SharedHeapSlots.Check(heap, patterns: false)).Message, StringComparison.Ordinal);
        heap.Free(lost);

        slots[8] = named; // slot 8 has the same size as slot 0
        Assert.Contains("doubly owned", Assert.Throws<SoakFailureException>(() => SharedHeapSlots.Check(heap, patterns: false)).Message, StringComparison.Ordinal);
        slots[8] = 0;

        slots[1] = named; // a block of slot 0's size in a slot whose blocks are 32 bytes
        slots[0] = 0;
        Assert.Contains("its blocks are 32 bytes", Assert.Throws<SoakFailureException>(() => SharedHeapSlots.Check(heap, patterns: false)).Message, StringComparison.Ordinal);
    }
}
