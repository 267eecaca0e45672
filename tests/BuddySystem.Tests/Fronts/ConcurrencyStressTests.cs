using System.Collections.Concurrent;
using BuddySystem.Testing;

namespace BuddySystem.Tests;

/// <summary>
/// Several threads hammer one thread-safe heap: every block is patterned on allocation and checked on free, a share of
/// the blocks is freed by another thread than the one that allocated it, and at the end the heap validates and merges
/// back to one block.
/// </summary>
public unsafe class ConcurrencyStressTests
{
    private const int Threads = 4;
    private const int OperationsPerThread = 1_000_000;
    private const int MaxLivePerThread = 2000;
    private const nuint HeapSize = 1 << 26;

    private readonly record struct Live(nint Address, Layout Layout);

    [Fact]
    public void Stress_ConcurrentHeap_FourThreadsMillionOpsEach_BlocksIntactAndHeapMerges()
    {
        using var heap = ConcurrentHeap.Create(HeapSize);
        Run(heap);
        heap.Validate();
        heap.Trim(); // every worker thread has exited: their caches come back
        AssertFullyMerged(heap.Stats);
    }

    [Fact]
    public void Stress_LockedHeap_FourThreadsMillionOpsEach_BlocksIntactAndHeapMerges()
    {
        using var heap = LockedHeap.Create(HeapSize);
        Run(heap);
        heap.Validate();
        heap.Trim();
        AssertFullyMerged(heap.Stats);
    }

    private static void AssertFullyMerged(HeapStats stats)
    {
        Assert.Equal(0, stats.LiveBlocks);
        Assert.Equal(0ul, stats.AllocatedBytes);
        Assert.Equal(0ul, stats.CachedBytes);
        Assert.Equal((ulong)HeapSize, stats.LargestFreeBlock);
        Assert.InRange(stats.Allocations, Threads * (long)OperationsPerThread / 4, Threads * (long)OperationsPerThread);
    }

    /// <summary>The pattern of a block: a function of its address and size, so a block written by anyone else shows.</summary>
    private static ulong PatternOf(nint address, nuint size) => ((ulong)address * 0x9E3779B97F4A7C15) ^ size ^ 0xA5A5_5A5A_0F0F_F0F0;

    private static void Fill(nint address, nuint size)
    {
        ulong pattern = PatternOf(address, size);
        var words = new Span<ulong>((void*)address, (int)(size / 8));
        words.Fill(pattern);
        for (nuint i = size & ~(nuint)7; i < size; i++)
        {
            ((byte*)address)[i] = (byte)pattern;
        }
    }

    private static void Check(nint address, nuint size)
    {
        ulong pattern = PatternOf(address, size);
        var words = new ReadOnlySpan<ulong>((void*)address, (int)(size / 8));
        int bad = words.IndexOfAnyExcept(pattern);
        bool tailOk = true;
        for (nuint i = size & ~(nuint)7; i < size; i++)
        {
            tailOk &= ((byte*)address)[i] == (byte)pattern;
        }

        if (bad >= 0 || !tailOk)
        {
            Assert.Fail($"block 0x{(ulong)address:x} of {size} bytes was overwritten while live (word {bad})");
        }
    }

    private static void Run(IAllocator heap)
    {
        // Blocks handed to another thread to free: the cross-thread frees.
        var handoff = new ConcurrentQueue<Live>[Threads];
        for (int t = 0; t < Threads; t++)
        {
            handoff[t] = new ConcurrentQueue<Live>();
        }

        using var start = new Barrier(Threads);
        var workers = new TestThread[Threads];
        for (int t = 0; t < Threads; t++)
        {
            int index = t;
            workers[t] = TestThread.Start(() =>
            {
                start.SignalAndWait();
                Work(heap, index, handoff);
            });
        }

        TestThread.JoinAll(workers);
        foreach (ConcurrentQueue<Live> queue in handoff)
        {
            while (queue.TryDequeue(out Live block))
            {
                Check(block.Address, block.Layout.Size);
                heap.Deallocate((void*)block.Address, block.Layout);
            }
        }
    }

    private static void Work(IAllocator heap, int index, ConcurrentQueue<Live>[] handoff)
    {
        var rng = new SplitMix64(0x5EED + (ulong)index);
        var live = new Live[MaxLivePerThread];
        int count = 0;
        ConcurrentQueue<Live> inbox = handoff[index];
        ConcurrentQueue<Live> outbox = handoff[(index + 1) % Threads];
        for (int op = 0; op < OperationsPerThread; op++)
        {
            ulong roll = rng.Next(100);
            if (roll < 10 && inbox.TryDequeue(out Live foreign))
            {
                Check(foreign.Address, foreign.Layout.Size);
                heap.Deallocate((void*)foreign.Address, foreign.Layout);
            }
            else if (count == 0 || (count < MaxLivePerThread && roll < 51))
            {
                // Mostly small blocks (the cached orders), now and then one of up to 16 KiB (the core under the lock).
                nuint size = roll % 16 == 0 ? (nuint)(1 + rng.Next(16384)) : (nuint)(1 + rng.Next(256));
                var layout = new Layout(size, (nuint)1 << (int)rng.Next(5));
                void* block = heap.Allocate(layout);
                Assert.True(block != null, "the heap is sized so that the stress never runs out");
                Assert.Equal(0ul, (ulong)block % layout.Align);
                Fill((nint)block, size);
                live[count++] = new Live((nint)block, layout);
            }
            else
            {
                int victim = (int)rng.Next((ulong)count);
                Live block = live[victim];
                live[victim] = live[--count];
                Check(block.Address, block.Layout.Size);
                if (roll % 8 == 0 && outbox.Count < 512)
                {
                    outbox.Enqueue(block);
                }
                else
                {
                    heap.Deallocate((void*)block.Address, block.Layout);
                }
            }
        }

        for (int i = 0; i < count; i++)
        {
            Check(live[i].Address, live[i].Layout.Size);
            heap.Deallocate((void*)live[i].Address, live[i].Layout);
        }
    }
}
