using BuddySystem.Cli.Bench;
using BuddySystem.Testing;

namespace BuddySystem.Tests;

public class BenchWorkloadsTests
{
    private static ulong Reference(ref ulong state)
    {
        unchecked
        {
            state += 0x9E3779B97F4A7C15UL;
            ulong z = state;
            z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
            z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
            return z ^ (z >> 31);
        }
    }

    [Fact]
    public void W1_SmallRun_AllocatesSixteenBytesAndFreesAtOnce()
    {
        var allocator = new RecordingAllocator(ulong.MaxValue);
        Measurement m = BenchWorkloads.W1(ref allocator, 1000);
        Assert.Equal(1000, m.Ops);
        Assert.Equal(2000, allocator.Calls.Count);
        for (int i = 0; i < 2000; i += 2)
        {
            Assert.Equal(('a', (nuint)16), (allocator.Calls[i].Op, allocator.Calls[i].Size));
            Assert.Equal(('f', allocator.Calls[i].Block), (allocator.Calls[i + 1].Op, allocator.Calls[i + 1].Block));
        }
    }

    [Fact]
    public void W2_Size4096_FreesInAllocationOrder()
    {
        var allocator = new RecordingAllocator(ulong.MaxValue);
        Measurement m = BenchWorkloads.W2(ref allocator, 4096, 2);
        Assert.Equal(2 * 2048, m.Ops);
        var first = allocator.Calls.Take(4096).ToList();
        Assert.All(first.Take(2048), c => Assert.Equal('a', c.Op));
        Assert.Equal(first.Take(2048).Select(c => c.Block), first.Skip(2048).Select(c => c.Block));
        Assert.All(first.Skip(2048), c => Assert.Equal('f', c.Op));
    }

    [Fact]
    public void W3_FixedSeed_AllocatorSeesTheDefinedSizes()
    {
        var allocator = new RecordingAllocator(ulong.MaxValue);
        BenchWorkloads.W3(ref allocator, 1000);
        var stream = new W3Stream(W3Stream.DefaultSeed);
        var expectedSizes = Enumerable.Range(0, 1000).Select(_ => stream.Next()).Where(op => op.IsAllocate).Select(op => (nuint)op.Size).ToList();
        Assert.Equal(expectedSizes, allocator.Calls.Where(c => c.Op == 'a').Select(c => c.Size).ToList());

        // Everything allocated is freed exactly once (the rest after the clock stops).
        Assert.Equal(
            allocator.Calls.Where(c => c.Op == 'a').Select(c => c.Block).Order(),
            allocator.Calls.Where(c => c.Op == 'f').Select(c => c.Block).Order());
    }

    [Fact]
    public void W4_FixedSeed_FreesInTheFisherYatesOrderOfSeedF00D()
    {
        const int N = 1024;
        var allocator = new RecordingAllocator(ulong.MaxValue);
        BenchWorkloads.W4(ref allocator, N);
        var allocated = allocator.Calls.Take(N).Select(c => c.Block).ToArray();
        ulong state = 0xF00D;
        for (int i = N - 1; i >= 1; i--)
        {
            int j = (int)(Reference(ref state) % (ulong)(i + 1));
            (allocated[i], allocated[j]) = (allocated[j], allocated[i]);
        }

        Assert.Equal(allocated, allocator.Calls.Skip(N).Select(c => c.Block).ToArray());
    }

    [Fact]
    public void W6_CappedArena_StopsAtFirstFailureAndMeasuresLiveBytes()
    {
        ulong capacity = 4UL << 20;
        var allocator = new RecordingAllocator(capacity);
        Measurement m = BenchWorkloads.W6(ref allocator, 3);
        Assert.Equal(3, m.Failed);
        Assert.Equal(3, allocator.Calls.Count(c => c.Op == 'x'));
        Assert.Equal(0UL, allocator.LiveBytes);

        // Failure comes when live bytes + the request pass the capacity: live bytes are within one request of it.
        Assert.InRange(m.Efficiency, (capacity - 100_000) / (double)BenchWorkloads.HeapSize, capacity / (double)BenchWorkloads.HeapSize);
        Assert.All(allocator.Calls.Where(c => c.Op == 'a'), c => Assert.InRange(c.Size, (nuint)1, (nuint)9_999));
        Assert.All(allocator.Calls.Where(c => c.Op == 'r'), c => Assert.InRange(c.Size, (nuint)1, (nuint)99_999));
    }

    [Fact]
    public void W5_TwoThreadsOnLockedHeap_RunsBothStreamsAndFreesEverything()
    {
        var allocator = TargetAllocator.OverRegion(BenchWorkloads.HeapSize, "locked-heap", new LockedHeap(new BuddyHeap()), HeapTarget.Of, heap => new LockedHeapCalls(heap));
        try
        {
            Measurement m = BenchWorkloads.W5(allocator, 2, 20_000);
            Assert.Equal(40_000, m.Ops);
            Assert.Equal(0, m.Failed);
            Assert.Equal(0, allocator.Stats.LiveBlocks);
            Assert.Equal(40_000 / 2, allocator.Stats.Allocations, 0.5 * 40_000 / 2);
        }
        finally
        {
            allocator.Dispose();
        }
    }

    [Theory]
    [InlineData("W1", 0, 32)]
    [InlineData("W5", 1, 32)]
    [InlineData("W5", 2, 64)]
    [InlineData("W5", 4, 128)]
    public void HeapSizeFor_GivesW5ThirtyTwoMebibytesPerThread(string workload, int value, int mebibytes)
    {
        Assert.Equal((nuint)mebibytes << 20, BenchWorkloads.HeapSizeFor(new WorkloadCase(workload, value)));
    }
}
