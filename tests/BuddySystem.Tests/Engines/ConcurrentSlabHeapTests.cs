namespace BuddySystem.Tests.Engines;

/// <summary>
/// <see cref="ConcurrentSlabHeap"/>: frees from other threads (thread-free lists, full slabs revived), racing double frees,
/// exited threads' slabs abandoned, adopted and returned, and the size-less calls. The reliability battery (misuse matrix,
/// model-based and parallel tests, fuzz corpus, soak and stress) runs on it through the engine catalog.
/// </summary>
public unsafe class ConcurrentSlabHeapTests
{
    private static readonly Layout s_small = new(64, 8);

    private static void OnThread(Action action)
    {
        Exception? error = null;
        var thread = new Thread(() =>
        {
            try
            {
                action();
            }
            catch (Exception caught)
            {
                error = caught;
            }
        });
        thread.Start();
        thread.Join();
        if (error != null)
        {
            throw new InvalidOperationException("the worker thread failed", error);
        }
    }

    [Fact]
    public void CrossThreadFrees_GoBackToTheOwnersSlabs_AndTheHeapEmpties()
    {
        using var heap = ConcurrentSlabHeap.Create(4 << 20);
        var blocks = new nint[5000];
        for (int i = 0; i < blocks.Length; i++)
        {
            blocks[i] = (nint)heap.Allocate(s_small);
            Assert.True(blocks[i] != 0);
        }

        long slabs = heap.SlabCount;
        OnThread(() =>
        {
            foreach (nint block in blocks)
            {
                heap.Deallocate((void*)block, s_small);
            }
        });
        heap.Validate();
        Assert.Equal(0ul, heap.Stats.AllocatedBytes);
        Assert.Equal(0, heap.Stats.LiveBlocks);

        // The owner collects its slabs' thread-free lists when its local lists run dry: no new slab is needed.
        for (int i = 0; i < blocks.Length; i++)
        {
            blocks[i] = (nint)heap.Allocate(s_small);
        }

        Assert.Equal(slabs, heap.SlabCount);
        heap.Validate();
        foreach (nint block in blocks)
        {
            heap.Deallocate((void*)block, s_small);
        }

        heap.Trim();
        Assert.Equal(0, heap.SlabCount);
        Assert.Equal(4ul << 20, heap.Stats.LargestFreeBlock);
    }

    [Fact]
    public void FullSlab_FreedIntoByAnotherThread_ServesItsOwnerAgain()
    {
        using var heap = ConcurrentSlabHeap.Create(1 << 20);
        var layout = new Layout(512, 8); // a first slab of 4 KiB: 8 objects
        var first = new List<nint>();
        void* next;
        while (true)
        {
            next = heap.Allocate(layout);
            if (heap.SlabCount == 2)
            {
                break; // the first slab is full: this object came from a second one
            }

            first.Add((nint)next);
        }

        Assert.True(first.Count >= 4);
        OnThread(() => heap.Deallocate((void*)first[3], layout));
        heap.Validate();

        // The second slab serves first; once it runs dry the revived first slab serves the freed object.
        var more = new List<nint>();
        for (int i = 0; i < 64; i++)
        {
            more.Add((nint)heap.Allocate(layout));
        }

        Assert.Contains(first[3], more);
        heap.Validate();
    }

    [Fact]
    public void DoubleFree_RacingOnTwoThreads_ExactlyOneSucceeds()
    {
        using var heap = ConcurrentSlabHeap.Create(1 << 20);
        using var start = new Barrier(2);
        int failures = 0;
        for (int round = 0; round < 300; round++)
        {
            void* block = heap.Allocate(s_small);
            void* keep = heap.Allocate(s_small); // keeps the slab from emptying between rounds
            int succeeded = 0;
            int threw = 0;
            void Free()
            {
                start.SignalAndWait();
                try
                {
                    heap.Deallocate(block, s_small);
                    Interlocked.Increment(ref succeeded);
                }
                catch (InvalidOperationException error) when (error.Message.Contains("0x" + ((ulong)block).ToString("x"), StringComparison.Ordinal))
                {
                    Interlocked.Increment(ref threw);
                }
            }

            var other = new Thread(Free);
            other.Start();
            Free();
            other.Join();
            if (succeeded != 1 || threw != 1)
            {
                failures++;
            }

            heap.Deallocate(keep, s_small);
        }

        Assert.Equal(0, failures);
        heap.Validate();
        Assert.Equal(0ul, heap.Stats.AllocatedBytes);
    }

    [Fact]
    public void ExitedThread_ItsSlabsAreAdoptedOrReturned()
    {
        using var heap = ConcurrentSlabHeap.Create(1 << 20);
        var live = new List<nint>();
        OnThread(() =>
        {
            for (int i = 0; i < 40; i++)
            {
                void* block = heap.Allocate(s_small);
                if (i % 2 == 0)
                {
                    live.Add((nint)block);
                }
                else
                {
                    heap.Deallocate(block, s_small);
                }
            }

            // A slab of another class emptied and kept by the thread: it must not be stranded when the thread exits.
            heap.Deallocate(heap.Allocate(new Layout(1000, 8)), new Layout(1000, 8));
        });

        // The exited thread's empty slab goes back; its slab with live objects waits for an adopter.
        heap.Validate();
        Assert.Equal(1, heap.SlabCount);
        void* adopted = heap.Allocate(s_small);
        Assert.Equal(1, heap.SlabCount); // served from the abandoned slab, not from a new one
        heap.Deallocate(adopted, s_small);
        foreach (nint block in live)
        {
            heap.Deallocate((void*)block, s_small);
        }

        heap.Trim();
        heap.Validate();
        Assert.Equal(0, heap.SlabCount);
        Assert.Equal(0ul, heap.Stats.AllocatedBytes);
        Assert.Equal(1ul << 20, heap.Stats.LargestFreeBlock);
    }

    [Fact]
    public void ExitedThread_FreesIntoAbandonedSlab_AreReturnedByTrim()
    {
        using var heap = ConcurrentSlabHeap.Create(1 << 20);
        var live = new List<nint>();
        OnThread(() =>
        {
            for (int i = 0; i < 100; i++)
            {
                live.Add((nint)heap.Allocate(s_small));
            }
        });

        Assert.Equal(100, heap.Stats.LiveBlocks);
        foreach (nint block in live)
        {
            heap.Deallocate((void*)block, s_small); // into the abandoned slab's thread-free list
        }

        heap.Validate();
        heap.Trim();
        Assert.Equal(0, heap.SlabCount);
        Assert.Equal(1ul << 20, heap.Stats.LargestFreeBlock);
    }

    [Fact]
    public void SizeLess_DeallocateAndUsableSize_ReadTheBlockItself()
    {
        using var heap = ConcurrentSlabHeap.Create(1 << 20);
        void* small = heap.Allocate(new Layout(100, 8));
        void* large = heap.Allocate(new Layout(20000, 8));
        Assert.Equal((nuint)112, heap.UsableSize(small));
        Assert.Equal((nuint)20480, heap.UsableSize(large));
        heap.Deallocate(small);
        heap.Deallocate(large);
        Assert.Throws<InvalidOperationException>(() => heap.Deallocate(small));
        Assert.Throws<ArgumentException>(() => heap.UsableSize((byte*)large + 16));
        Assert.Throws<ArgumentNullException>(() => heap.Deallocate(null));
        heap.Validate();
        Assert.Equal(0ul, heap.Stats.AllocatedBytes);
    }

    [Fact]
    public void ManyThreads_AllocateAndFreeEachOthersObjects_HeapValidatesAndEmpties()
    {
        using var heap = ConcurrentSlabHeap.Create(64 << 20); // room for every object even if no thread frees in time
        const int Threads = 4;
        var queues = new System.Collections.Concurrent.ConcurrentQueue<(nint Block, Layout Layout)>[Threads];
        for (int t = 0; t < Threads; t++)
        {
            queues[t] = new();
        }

        var workers = Enumerable.Range(0, Threads).Select(t => new Thread(() =>
        {
            var rng = new Random(t);
            for (int i = 0; i < 20000; i++)
            {
                var layout = new Layout((nuint)rng.Next(1, 1000), 8);
                byte* block = (byte*)heap.Allocate(layout);
                Assert.True(block != null);
                block[0] = (byte)t;
                queues[(t + 1) % Threads].Enqueue(((nint)block, layout));
                if (queues[t].TryDequeue(out var theirs))
                {
                    heap.Deallocate((void*)theirs.Block, theirs.Layout);
                }
            }
        })).ToList();
        workers.ForEach(w => w.Start());
        workers.ForEach(w => w.Join());
        foreach (var queue in queues)
        {
            while (queue.TryDequeue(out var left))
            {
                heap.Deallocate((void*)left.Block, left.Layout);
            }
        }

        heap.Validate();
        Assert.Equal(0ul, heap.Stats.AllocatedBytes);
        heap.Trim();
        Assert.Equal(0, heap.SlabCount);
    }

    private static readonly Layout s_large = new(60 * 1024, 8); // a large block: 60 KiB kept of a 64 KiB buddy block

    /// <summary>Registers the calling thread with the heap (its first free of a large block takes the locked path) and
    /// leaves one freed large block of <see cref="s_large"/> in its large cache.</summary>
    private static void* FreeOneIntoCache(ConcurrentSlabHeap heap)
    {
        void* first = heap.Allocate(s_large);
        void* second = heap.Allocate(s_large);
        Assert.True(first != null && second != null);
        heap.Deallocate(first, s_large);
        heap.Deallocate(second, s_large);
        return second;
    }

    [Fact]
    public void LargeBlock_FreedAndAllocatedAgainOnTheSameThread_IsReusedFromItsCache_AndCountedAsCached()
    {
        using var heap = ConcurrentSlabHeap.Create(1 << 20);
        void* cached = FreeOneIntoCache(heap);
        heap.Validate();
        HeapStats freed = heap.Stats;
        Assert.Equal(0ul, freed.AllocatedBytes);
        Assert.Equal(0, freed.LiveBlocks);
        Assert.True(freed.CachedBytes >= 60 * 1024, $"cached {freed.CachedBytes}");

        void* again = heap.Allocate(s_large);
        Assert.True(again == cached, "the same length comes from the thread's large cache");
        heap.Validate();
        Assert.Equal(60ul * 1024, heap.Stats.AllocatedBytes);
        Assert.Equal((ulong)s_large.Size, heap.Stats.UserBytes);
        Assert.Equal(1, heap.Stats.LiveBlocks);

        heap.Deallocate(again, s_large);
        heap.Trim();
        heap.Validate();
        Assert.Equal(0ul, heap.Stats.CachedBytes);
        Assert.Equal(1ul << 20, heap.Stats.LargestFreeBlock);
    }

    [Fact]
    public void LargeBlock_InTheCache_FreedAgainOrWithAnotherLayout_IsRejected_AndTheHeapIsUnchanged()
    {
        using var heap = ConcurrentSlabHeap.Create(1 << 20);
        void* cached = FreeOneIntoCache(heap);
        HeapStats before = heap.Stats;
        string address = "0x" + ((ulong)cached).ToString("x");

        Assert.Contains(address, Assert.Throws<InvalidOperationException>(() => heap.Deallocate(cached, s_large)).Message, StringComparison.Ordinal);
        Assert.Throws<InvalidOperationException>(() => heap.Deallocate(cached, new Layout(40 * 1024, 8)));
        Assert.Throws<InvalidOperationException>(() => heap.Deallocate(cached));
        Assert.Throws<InvalidOperationException>(() => heap.UsableSize(cached));
        Assert.Throws<InvalidOperationException>(() => heap.Reallocate(cached, s_large, 10));
        OnThread(() => Assert.Throws<InvalidOperationException>(() => heap.Deallocate(cached, s_large)));

        heap.Validate();
        HeapStats after = heap.Stats;
        Assert.Equal(before with { FreeBlocksByOrder = [] }, after with { FreeBlocksByOrder = [] });
        Assert.Equal(before.FreeBlocksByOrder, after.FreeBlocksByOrder);
        Assert.True(heap.Allocate(s_large) == cached);
    }

    [Fact]
    public void LargeBlock_WrongLayoutFree_OfALiveBlock_LeavesItLive()
    {
        using var heap = ConcurrentSlabHeap.Create(1 << 20);
        FreeOneIntoCache(heap);
        void* live = heap.Allocate(new Layout(40 * 1024, 8));
        Assert.Throws<ArgumentException>(() => heap.Deallocate(live, s_large));
        heap.Validate();
        heap.Deallocate(live, new Layout(40 * 1024, 8));
        heap.Validate();
    }

    [Fact]
    public void LargeBlocks_CachedByALiveThread_AreReclaimedForAnAllocationThatWouldFailOtherwise()
    {
        using var heap = ConcurrentSlabHeap.Create(256 * 1024);
        using var cached = new ManualResetEventSlim();
        using var done = new ManualResetEventSlim();
        var owner = new Thread(() =>
        {
            FreeOneIntoCache(heap);
            cached.Set();
            done.Wait();
        });
        owner.Start();
        try
        {
            cached.Wait();
            Assert.True(heap.Stats.CachedBytes >= 60 * 1024);

            // The whole heap as one block: only possible once the other thread's cache went back to the buddy engine.
            var whole = new Layout(256 * 1024, 8);
            void* block = heap.Allocate(whole);
            Assert.True(block != null, "the live thread's cached large blocks were reclaimed");
            Assert.Equal(0, heap.Stats.FailedAllocations);
            heap.Validate();
            heap.Deallocate(block, whole);
        }
        finally
        {
            done.Set();
            owner.Join();
        }

        heap.Validate();
        Assert.Equal(0ul, heap.Stats.AllocatedBytes);
    }

    [Fact]
    public void LargeBlocks_CachedByAnExitedThread_GoBackToTheBuddyEngine()
    {
        using var heap = ConcurrentSlabHeap.Create(1 << 20);
        OnThread(() => FreeOneIntoCache(heap));
        heap.Trim();
        heap.Validate();
        Assert.Equal(0ul, heap.Stats.CachedBytes);
        Assert.Equal(1ul << 20, heap.Stats.LargestFreeBlock);
    }

    [Fact]
    public void LargeBlock_DoubleFreeRacingOnTwoThreads_ExactlyOneSucceeds()
    {
        using var heap = ConcurrentSlabHeap.Create(1 << 20);
        FreeOneIntoCache(heap); // this thread frees through its large cache; the other thread under the lock
        heap.Trim();
        using var start = new Barrier(2);
        int failures = 0;
        for (int round = 0; round < 300; round++)
        {
            void* block = heap.Allocate(s_large);
            int succeeded = 0;
            int threw = 0;
            void Free()
            {
                start.SignalAndWait();
                try
                {
                    heap.Deallocate(block, s_large);
                    Interlocked.Increment(ref succeeded);
                }
                catch (InvalidOperationException error) when (error.Message.Contains("0x" + ((ulong)block).ToString("x"), StringComparison.Ordinal))
                {
                    Interlocked.Increment(ref threw);
                }
            }

            var other = new Thread(Free);
            other.Start();
            Free();
            other.Join();
            if (succeeded != 1 || threw != 1)
            {
                failures++;
            }

            heap.Validate();
        }

        Assert.Equal(0, failures);
        Assert.Equal(0ul, heap.Stats.AllocatedBytes);
        heap.Trim();
        Assert.Equal(1ul << 20, heap.Stats.LargestFreeBlock);
    }
}
