using BuddySystem.Buffers;
using BuddySystem.Testing;

namespace BuddySystem.Tests;

/// <summary>Issue 11: no memory stranded in live threads' caches, stats that tell the truth, exact checks under races.</summary>
public unsafe class CacheTruthTests
{
    private static readonly Layout Small = new(16, 8);

    /// <summary>Runs <paramref name="setup"/> on a new thread that then stays alive until the returned event is set; a
    /// failure of <paramref name="setup"/> is rethrown here.</summary>
    private static (TestThread Thread, ManualResetEventSlim Release) KeepAliveAfter(Action setup)
    {
        var ready = new ManualResetEventSlim();
        var release = new ManualResetEventSlim();
        var thread = TestThread.Start(() =>
        {
            try
            {
                setup();
            }
            finally
            {
                ready.Set();
            }

            release.Wait();
        });
        ready.Wait();
        if (thread.Failure is not null)
        {
            thread.Join();
        }

        return (thread, release);
    }

    [Fact]
    public void Allocate_WholeHeapWhileALiveThreadCachesABlock_Succeeds()
    {
        using var heap = ConcurrentHeap.Create(1 << 20);
        (TestThread thread, ManualResetEventSlim release) = KeepAliveAfter(() => heap.Deallocate(heap.Allocate(Small), Small));
        try
        {
            void* all = heap.Allocate(new Layout(1 << 20, 8));
            Assert.True(all != null);
            heap.Deallocate(all, new Layout(1 << 20, 8));
            heap.Trim();
            Assert.Equal(0ul, heap.Stats.CachedBytes);
            Assert.Equal(1ul << 20, heap.Stats.LargestFreeBlock);
            heap.Validate();
        }
        finally
        {
            release.Set();
            thread.Join();
        }
    }

    [Fact]
    public void Allocate_FourLiveThreadsHoldingCaches_EveryRequestThatFitsSucceeds()
    {
        using var heap = ConcurrentHeap.Create(1 << 22);
        var threads = new List<(TestThread, ManualResetEventSlim)>();
        for (int t = 0; t < 4; t++)
        {
            int seed = t;
            threads.Add(KeepAliveAfter(() =>
            {
                var rng = new Random(seed);
                var live = new List<(nint, Layout)>();
                for (int i = 0; i < 2000; i++)
                {
                    var layout = new Layout((nuint)rng.Next(1, 60_000), 8);
                    void* block = heap.Allocate(layout);
                    if (block != null)
                    {
                        live.Add(((nint)block, layout));
                    }

                    if (live.Count > 20)
                    {
                        int k = rng.Next(live.Count);
                        heap.Deallocate((void*)live[k].Item1, live[k].Item2);
                        live.RemoveAt(k);
                    }
                }

                foreach ((nint block, Layout layout) in live)
                {
                    heap.Deallocate((void*)block, layout);
                }
            }));
        }

        try
        {
            Assert.True(heap.Stats.CachedBytes > 0);
            Assert.Equal(1ul << 22, heap.Stats.LargestFreeBlock);

            // 0 live blocks: the whole heap as one block, then as 64 blocks of 64 KiB: every request that fits succeeds.
            void* all = heap.Allocate(new Layout(1 << 22, 8));
            Assert.True(all != null);
            heap.Deallocate(all, new Layout(1 << 22, 8));
            var pieces = new List<nint>();
            for (int i = 0; i < 64; i++)
            {
                void* piece = heap.Allocate(new Layout(1 << 16, 8));
                Assert.True(piece != null, $"piece {i}");
                pieces.Add((nint)piece);
            }

            foreach (nint piece in pieces)
            {
                heap.Deallocate((void*)piece, new Layout(1 << 16, 8));
            }

            heap.Validate();
        }
        finally
        {
            foreach ((TestThread thread, ManualResetEventSlim release) in threads)
            {
                release.Set();
                thread.Join();
            }
        }
    }

    [Fact]
    public void Gen2Collection_IdleLiveThreadsCache_IsReturned()
    {
        using var heap = ConcurrentHeap.Create(1 << 20);
        (TestThread thread, ManualResetEventSlim release) = KeepAliveAfter(() => heap.Deallocate(heap.Allocate(Small), Small));
        try
        {
            Assert.True(heap.Stats.CachedBytes > 0);
            // The heap stays in use on this thread (as a server's other threads use it); the thread that went idle is trimmed.
            for (int i = 0; i < 20 && heap.Stats.CachedBytes != 0; i++)
            {
                heap.Deallocate(heap.Allocate(new Layout(1 << 19, 8)), new Layout(1 << 19, 8));
                GC.Collect();
                GC.WaitForPendingFinalizers();
            }

            Assert.Equal(0ul, heap.Stats.CachedBytes);
            heap.Validate();
        }
        finally
        {
            release.Set();
            thread.Join();
        }
    }

    [Fact]
    public void Stats_AfterOneCachedFree_LargestFreeBlockIsWhatAllocateGets()
    {
        using var heap = BuddyHeap.Create(1 << 16);
        heap.Deallocate(heap.Allocate(Small), Small);
        HeapStats stats = heap.Stats;
        Assert.Equal(1ul << 16, stats.LargestFreeBlock);
        Assert.Equal(1L, stats.FreeBlocksByOrder[12]);
        Assert.Equal(1L, stats.FreeBlocksByOrder.Sum());
        Assert.True(heap.Allocate(new Layout(1 << 16, 8)) != null);
    }

    [Fact]
    public void HeapExhaustedException_WhileBlocksAreCached_ReportsTheMergedLargestBlock()
    {
        using var heap = LockedHeap.Create(1 << 16);
        var half = new Layout(1 << 15, 8);
        void* live = heap.Allocate(half);
        heap.Deallocate(heap.Allocate(Small), Small);
        HeapExhaustedException e = HeapExhaustedException.For(heap, new Layout(1 << 16, 8));
        Assert.Equal(1ul << 15, e.LargestFreeBlock);
        Assert.Equal(1ul << 15, e.FreeBytes);
        Assert.Equal(1ul << 15, heap.Stats.LargestFreeBlock);
        heap.Deallocate(live, half);
    }

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    public void Stats_RandomOperations_FreeBlocksByOrderIsWhatTrimLeaves(int seed)
    {
        using var heap = BuddyHeap.Create(1 << 18);
        var rng = new Random(seed);
        var live = new List<(nint, Layout)>();
        for (int i = 0; i < 3000; i++)
        {
            if (live.Count > 0 && rng.Next(2) == 0)
            {
                int k = rng.Next(live.Count);
                heap.Deallocate((void*)live[k].Item1, live[k].Item2);
                live.RemoveAt(k);
            }
            else
            {
                var layout = new Layout((nuint)rng.Next(1, 3000), 8);
                void* block = heap.Allocate(layout);
                if (block != null)
                {
                    live.Add(((nint)block, layout));
                }
            }

            if (i % 300 == 0)
            {
                HeapStats before = heap.Stats;
                Assert.Equal(before.FreeBytes, before.FreeBlocksByOrder.Select((n, k) => (ulong)n << (k + 4)).Aggregate(0ul, (a, b) => a + b));
                using var twin = BuddyHeap.Create(1 << 18);
                heap.Trim();
                HeapStats after = heap.Stats;
                Assert.Equal(after.FreeBlocksByOrder, before.FreeBlocksByOrder);
                Assert.Equal(after.LargestFreeBlock, before.LargestFreeBlock);
            }
        }
    }

    [Fact]
    public void Stats_WhileBlocksMoveBetweenThreads_AddUpToWhatTheTestHolds()
    {
        // Pairs of threads hand blocks from one thread's cache to another's, in bursts, so per-thread counters swing by
        // hundreds of blocks between two reads of a Stats that would sum them at different moments. The test holds a base of
        // blocks of its own all along, so such a sum shows as fewer live blocks than that base, or as figures that disagree
        // with each other: every block is Small, so UserBytes and AllocatedBytes are fixed multiples of LiveBlocks. (Stats
        // clamps UserBytes and LiveBlocks into range, so "never negative" alone could not fail.)
        using var heap = ConcurrentHeap.Create(1 << 22);
        const int Held = 1000;
        const int Pairs = 3;
        const int Burst = 256;
        const int MaxInFlight = Pairs * 6 * Burst; // per pair: a burst being filled, 4 queued, one being freed
        var held = new nint[Held];
        for (int i = 0; i < Held; i++)
        {
            held[i] = (nint)heap.Allocate(Small);
            Assert.True(held[i] != 0);
        }

        HeapStats start = heap.Stats;
        Assert.Equal(Held, start.LiveBlocks);
        Assert.Equal(Held * (ulong)Small.Size, start.UserBytes);
        ulong blockBytes = start.AllocatedBytes / Held;
        Assert.InRange(blockBytes, (ulong)Small.Size, 64ul);
        Assert.Equal(Held * blockBytes, start.AllocatedBytes);

        using var stop = new CancellationTokenSource(TimeSpan.FromSeconds(1.5));
        long produced = 0;
        long failed = 0;
        var threads = new List<TestThread>();
        for (int p = 0; p < Pairs; p++)
        {
            var queue = new System.Collections.Concurrent.BlockingCollection<nint[]>(4);
            threads.Add(TestThread.Start(() =>
            {
                try
                {
                    while (!stop.IsCancellationRequested)
                    {
                        var burst = new nint[Burst];
                        int served = 0;
                        for (int i = 0; i < burst.Length; i++)
                        {
                            burst[i] = (nint)heap.Allocate(Small);
                            served += burst[i] != 0 ? 1 : 0;
                        }

                        Interlocked.Add(ref produced, served);
                        Interlocked.Add(ref failed, Burst - served);
                        queue.Add(burst);
                    }
                }
                finally
                {
                    queue.CompleteAdding();
                }
            }));
            threads.Add(TestThread.Start(() =>
            {
                foreach (nint[] burst in queue.GetConsumingEnumerable())
                {
                    foreach (nint block in burst)
                    {
                        if (block != 0)
                        {
                            heap.Deallocate((void*)block, Small);
                        }
                    }
                }
            }));
        }

        string? bad = null;
        long reads = 0;
        long allocations = start.Allocations;
        while (!stop.IsCancellationRequested && bad == null)
        {
            HeapStats s = heap.Stats;
            reads++;
            if (s.LiveBlocks < Held || s.LiveBlocks > Held + MaxInFlight
                || s.UserBytes != (ulong)s.LiveBlocks * (ulong)Small.Size
                || s.AllocatedBytes != (ulong)s.LiveBlocks * blockBytes
                || s.Allocations < allocations)
            {
                bad = $"read {reads}: {s}";
            }

            allocations = s.Allocations;
        }

        TestThread.JoinAll(threads);
        Assert.Null(bad);
        Assert.True(reads > 10, $"only {reads} reads of Stats while the threads ran");
        Assert.Equal(0, failed);

        // Quiet again: exactly the base, and exactly the allocations the threads made on top of it.
        HeapStats end = heap.Stats;
        Assert.Equal(start.LiveBlocks, end.LiveBlocks);
        Assert.Equal(start.UserBytes, end.UserBytes);
        Assert.Equal(start.AllocatedBytes, end.AllocatedBytes);
        Assert.Equal(start.Allocations + produced, end.Allocations);
        foreach (nint block in held)
        {
            heap.Deallocate((void*)block, Small);
        }

        HeapStats empty = heap.Stats;
        Assert.Equal(0, empty.LiveBlocks);
        Assert.Equal(0ul, empty.UserBytes);
        Assert.Equal(0ul, empty.AllocatedBytes);
        Assert.Equal(empty.TotalBytes, empty.FreeBytes);
        heap.Validate();
    }

    /// <summary>The thread-safe pointer engines: those two threads can race on.</summary>
    public static TheoryData<string> ThreadSafePointerEngines => [.. EngineCatalog.ThreadSafeNames.Intersect(EngineCatalog.PointerHeapNames)];

    // Engines whose freed block can merge before the loser of the race checks it: a Gen2 collection returns a racer's idle
    // cache (concurrent-heap-buddy) or empty slab (concurrent-heap) to the core, where the block merges with its buddy; the
    // loser's address is then inside a larger free block and the core rejects it as "not the start of a block"
    // (ArgumentException) instead of as a double free (InvalidOperationException). Seen on a loaded machine: 5 rounds of
    // 3 000 on concurrent-heap-buddy during a full test run. An open defect of the core's check (BuddyHeap.CheckLiveBlock),
    // reported in issue 33; the other engines never merge a block between the two frees here and must say double free.
    private static readonly HashSet<string> s_mergeBeforeTheLoser = ["concurrent-heap", "concurrent-heap-buddy"];

    [Theory]
    [MemberData(nameof(ThreadSafePointerEngines))]
    public void Deallocate_TwoThreadsRacingToFreeOneBlock_ExactlyOneSucceedsTheOtherSaysDoubleFree(string engine)
    {
        using HeapTarget heap = EngineCatalog.CreateTarget(engine, 1 << 20);
        const int Rounds = 3000;
        nint target = 0;
        long deadline = 0;
        int successes = 0;
        int rejections = 0;
        int merged = 0;
        bool mayMerge = s_mergeBeforeTheLoser.Contains(engine);
        using var barrier = new Barrier(3);
        var unexpected = new System.Collections.Concurrent.ConcurrentQueue<string>();
        void Racer(int racer)
        {
            heap.Allocator.Deallocate(heap.Allocator.Allocate(Small), Small); // a cache and a hot region, so the race is on the fast path
            for (int round = 0; round < Rounds; round++)
            {
                barrier.SignalAndWait();

                // Both racers spin on the one clock until the same instant, so their frees overlap within nanoseconds
                // (a barrier alone releases them microseconds apart); the second racer shifts by a few spins per round.
                long start = Volatile.Read(ref deadline);
                while (System.Diagnostics.Stopwatch.GetTimestamp() < start)
                {
                }

                if (racer == 1)
                {
                    Thread.SpinWait(round % 8);
                }

                nint block = Volatile.Read(ref target);
                string address = "0x" + ((ulong)block).ToString("x", System.Globalization.CultureInfo.InvariantCulture);
                try
                {
                    heap.Allocator.Deallocate((void*)block, Small);
                    Interlocked.Increment(ref successes);
                }
                catch (InvalidOperationException error) when (error is not HeapCorruptionException && error.Message.Contains(address, StringComparison.Ordinal))
                {
                    // The documented type for a double free (IAllocator.Deallocate), naming the address.
                    Interlocked.Increment(ref rejections);
                }
                catch (ArgumentException error) when (mayMerge && error.Message.Contains(address + ": it is not the start of a block", StringComparison.Ordinal))
                {
                    // The winner's block merged before this call checked it (see s_mergeBeforeTheLoser).
                    Interlocked.Increment(ref rejections);
                    Interlocked.Increment(ref merged);
                }
                catch (Exception e)
                {
                    // Caught here, not thrown, so the barrier's other parties are not left waiting.
                    unexpected.Enqueue($"round {round}: {e.GetType().Name}: {e.Message}");
                }

                barrier.SignalAndWait();
            }
        }

        TestThread[] racers = [TestThread.Start(() => Racer(0)), TestThread.Start(() => Racer(1))];
        long lead = System.Diagnostics.Stopwatch.Frequency / 2000; // 0.5 ms: both racers are spinning by then
        for (int round = 0; round < Rounds; round++)
        {
            // A block of its own each round, allocated here, so a second success could only be the double free.
            void* block = heap.Allocator.Allocate(Small);
            Assert.True(block != null);
            Volatile.Write(ref target, (nint)block);
            Volatile.Write(ref deadline, System.Diagnostics.Stopwatch.GetTimestamp() + lead);
            barrier.SignalAndWait();
            barrier.SignalAndWait();
        }

        TestThread.JoinAll(racers);
        Assert.True(unexpected.IsEmpty, $"{unexpected.Count} rounds threw otherwise; first: {unexpected.FirstOrDefault()}");
        Assert.Equal(Rounds, successes);
        Assert.Equal(Rounds, rejections);
        Assert.True(merged <= Rounds / 20, $"{merged} of {Rounds} losers found the block merged: the race is not on the fast path");
        heap.Validate();
    }

    [Fact]
    public void Dispose_WhileOtherThreadsAllocate_TheyOnlySeeObjectDisposed()
    {
        for (int round = 0; round < 10; round++)
        {
            var heap = ConcurrentHeap.Create(1 << 20);
            Exception? unexpected = null;
            var started = new CountdownEvent(2);
            var workers = new TestThread[2];
            for (int t = 0; t < 2; t++)
            {
                workers[t] = TestThread.Start(() =>
                {
                    var held = new Queue<nint>();
                    try
                    {
                        started.Signal();
                        while (true)
                        {
                            void* block = heap.Allocate(new Layout(64, 8));
                            if (block != null)
                            {
                                held.Enqueue((nint)block);
                            }

                            if (held.Count > 32)
                            {
                                heap.Deallocate((void*)held.Dequeue(), new Layout(64, 8));
                            }
                        }
                    }
                    catch (ObjectDisposedException)
                    {
                    }
                    catch (Exception e)
                    {
                        unexpected = e;
                    }
                });
            }

            started.Wait();
            Thread.Sleep(20);
            heap.Dispose();
            TestThread.JoinAll(workers);

            Assert.Null(unexpected);
        }
    }

    [Fact]
    public void OwnerDispose_AfterItsAllocatorWasDisposed_IsHarmless()
    {
        var heap = LockedHeap.Create(1 << 16);
        using var pool = new BuddyMemoryPool(heap);
        System.Buffers.IMemoryOwner<byte> owner = pool.Rent(100);
        heap.Dispose();
        owner.Dispose();
        Assert.Equal(0, pool.RentedBuffers);
    }
}
