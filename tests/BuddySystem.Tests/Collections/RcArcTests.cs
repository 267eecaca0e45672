using BuddySystem.Collections;

namespace BuddySystem.Tests;

public unsafe class RcArcTests
{
    [Fact]
    public void Rc_CloneThenDisposeEach_LastHandleFrees()
    {
        using var heap = BuddyHeap.Create(4096);
        var first = new Rc<long>(heap, 42);
        Rc<long> second = first.Clone();
        Assert.Equal(2, first.StrongCount);
        Assert.True(first.SharesValueWith(second));
        *first.Pointer = 43;
        Assert.Equal(43, second.Value);

        first.Dispose();
        first.Dispose();
        Assert.Equal(1, second.StrongCount);
        Assert.NotEqual(0ul, heap.Stats.AllocatedBytes);
        Assert.Throws<ObjectDisposedException>(() => first.Value);
        Assert.Throws<ObjectDisposedException>(() => first.Clone());

        second.Dispose();
        Assert.Equal(0ul, heap.Stats.AllocatedBytes);
        heap.Validate();
    }

    [Fact]
    public void Rc_HeapExhausted_ThrowsAndHeapStaysValid()
    {
        using var heap = BuddyHeap.Create(64);
        var live = new List<Rc<long>>();
        Assert.Throws<HeapExhaustedException>((Action)(() =>
        {
            while (true)
            {
                live.Add(new Rc<long>(heap, live.Count));
            }
        }));
        Assert.NotEmpty(live);
        heap.Validate();
        for (int i = 0; i < live.Count; i++)
        {
            Assert.Equal(i, live[i].Value);
            live[i].Dispose();
        }

        Assert.Equal(0ul, heap.Stats.AllocatedBytes);
    }

    [Fact]
    public void Arc_HeapExhausted_ThrowsAndHeapStaysValid()
    {
        using var heap = LockedHeap.Create(64);
        var live = new List<Arc<long>>();
        Assert.Throws<HeapExhaustedException>((Action)(() =>
        {
            while (true)
            {
                live.Add(new Arc<long>(heap, live.Count));
            }
        }));
        Assert.NotEmpty(live);
        heap.Validate();
        live.ForEach(arc => arc.Dispose());
        Assert.Equal(0ul, heap.Stats.AllocatedBytes);
    }

    [Fact]
    public void Arc_SharedAcrossThreads_CountsAndFreesOnce()
    {
        const int Threads = 4;
        const int Rounds = 20_000;
        using var heap = LockedHeap.Create(1 << 16);
        var root = new Arc<long>(heap, 0);
        var handles = new Arc<long>[Threads];
        for (int t = 0; t < Threads; t++)
        {
            handles[t] = root.Clone();
        }

        root.Dispose();
        using var start = new Barrier(Threads);
        var workers = new TestThread[Threads];
        for (int t = 0; t < Threads; t++)
        {
            Arc<long> mine = handles[t];
            workers[t] = TestThread.Start(() =>
            {
                start.SignalAndWait();
                for (int i = 0; i < Rounds; i++)
                {
                    // Clone and drop from every thread at once: the count must never reach zero early.
                    using Arc<long> extra = mine.Clone();
                    Interlocked.Increment(ref *extra.Pointer);
                }

                mine.Dispose();
                mine.Dispose();
            });
        }

        TestThread.JoinAll(workers);

        Assert.Equal(0ul, heap.Stats.AllocatedBytes);
        // Clones share the one block: the heap served exactly one allocation, and the last dispose, on some worker, freed it.
        Assert.Equal(1, heap.Stats.Allocations);
        heap.Validate();
    }

    [Fact]
    public void Arc_LastHandleOnAnotherThread_SeesEveryIncrement()
    {
        using var heap = LockedHeap.Create(4096);
        using var keeper = new Arc<long>(heap, 0);
        Parallel.For(0, 8, _ =>
        {
            using Arc<long> mine = keeper.Clone();
            for (int i = 0; i < 10_000; i++)
            {
                Interlocked.Increment(ref *mine.Pointer);
            }
        });
        Assert.Equal(80_000, keeper.Value);
        Assert.Equal(1, keeper.StrongCount);
    }

    [Fact]
    public void Arc_DisposeSameHandleFromManyThreads_CountsOnce()
    {
        using var heap = LockedHeap.Create(4096);
        using var keeper = new Arc<int>(heap, 7);
        Arc<int> shared = keeper.Clone();
        Parallel.For(0, 16, _ => shared.Dispose());
        Assert.True(shared.IsDisposed);
        Assert.Equal(1, keeper.StrongCount);
        Assert.Equal(7, keeper.Value);
    }
}
