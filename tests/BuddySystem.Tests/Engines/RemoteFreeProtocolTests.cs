namespace BuddySystem.Tests.Engines;

/// <summary>
/// The remote-free protocol of <see cref="ConcurrentHeap"/>'s size-class tier on the real code: the owner frees with plain
/// stores, another thread claims the object's remote mark. The races the protocol must catch are set up step by step
/// (<see cref="ConcurrentHeap.ClaimAndPushAsAfterStaleRead"/> is another thread's free after a read of the state that was
/// stale), so each late path runs deterministically; <c>ProtocolInterleavingTests</c> enumerates every interleaving of a
/// model of the same steps.
/// </summary>
public unsafe class RemoteFreeProtocolTests
{
    private static readonly Layout s_small = new(64, 8);

    [Fact]
    public void OwnerFreeThenStaleRemoteFree_TheCollectionReportsItOnce_AndTheObjectIsKeptOnce()
    {
        var reports = new List<InvalidOperationException>();
        using var heap = ConcurrentHeap.Create(1 << 20, BuddyHeapOptions.ConcurrentDefault with { LateMisuseHandler = reports.Add });
        void* block = heap.Allocate(s_small);
        void* keep = heap.Allocate(s_small);

        heap.Deallocate(block, s_small);
        heap.ClaimAndPushAsAfterStaleRead(block); // the second free, whose read of the state came before the owner's store
        Assert.Empty(reports);

        heap.Trim(); // collects the thread-free list: the object is free already
        var report = Assert.Single(reports);
        Assert.Contains("0x" + ((ulong)block).ToString("x"), report.Message, StringComparison.Ordinal);
        heap.Validate();

        // Free once: handed out once, and the next allocation is another object.
        void* first = heap.Allocate(s_small);
        void* second = heap.Allocate(s_small);
        Assert.True(first != second);
        Assert.True(first == block || second == block);
        heap.Deallocate(first, s_small);
        heap.Deallocate(second, s_small);
        heap.Deallocate(keep, s_small);
        Assert.Single(reports);
        heap.Validate();
        Assert.Equal(0ul, heap.Stats.AllocatedBytes);
    }

    [Fact]
    public void StaleRemoteFreeOfAFreeObject_ThePopDoesNotHandItOut_AndTheCollectionReportsItOnce()
    {
        var reports = new List<InvalidOperationException>();
        using var heap = ConcurrentHeap.Create(1 << 20, BuddyHeapOptions.ConcurrentDefault with { LateMisuseHandler = reports.Add });
        void* block = heap.Allocate(s_small);
        void* keep = heap.Allocate(s_small);
        heap.Deallocate(block, s_small); // on the head of the owner's local list

        heap.ClaimAndPushAsAfterStaleRead(block);
        void* next = heap.Allocate(s_small); // pops the claimed object: quarantined, not handed out
        Assert.True(next != null && next != block);
        Assert.Empty(reports); // the claimer read "live", so it named nothing: the collection will

        heap.Trim();
        var report = Assert.Single(reports);
        Assert.Contains("0x" + ((ulong)block).ToString("x"), report.Message, StringComparison.Ordinal);
        heap.Validate();

        var live = new HashSet<nint> { (nint)next, (nint)keep };
        for (int i = 0; i < 64; i++)
        {
            Assert.True(live.Add((nint)heap.Allocate(s_small)), "an object was handed out twice");
        }

        foreach (nint item in live)
        {
            heap.Deallocate((void*)item, s_small);
        }

        Assert.Single(reports);
        heap.Validate();
        Assert.Equal(0ul, heap.Stats.AllocatedBytes);
    }

    [Fact]
    public void OwnerFreeWhileAnotherThreadsFreeIsInFlight_IsNamedAtTheCall_HeapUnchanged()
    {
        var reports = new List<InvalidOperationException>();
        using var heap = ConcurrentHeap.Create(1 << 20, BuddyHeapOptions.ConcurrentDefault with { LateMisuseHandler = reports.Add });
        void* block = heap.Allocate(s_small);
        void* keep = heap.Allocate(s_small);
        heap.ClaimAndPushAsAfterStaleRead(block); // another thread's free of the live object, pushed, not yet collected

        var ownerError = Assert.Throws<InvalidOperationException>(() => heap.Deallocate(block, s_small));
        Assert.Contains("0x" + ((ulong)block).ToString("x"), ownerError.Message, StringComparison.Ordinal);
        Exception? remoteError = null;
        OtherThread.Run(() => remoteError = Record.Exception(() => heap.Deallocate(block, s_small)));
        Assert.IsType<InvalidOperationException>(remoteError);

        heap.Validate();
        heap.Deallocate(keep, s_small);
        Assert.Empty(reports);
        Assert.Equal(0ul, heap.Stats.AllocatedBytes);
    }

    [Fact]
    public void ObjectsFreedByAnotherThread_GoBackToTheOwner_WithoutAnyReport()
    {
        var reports = new List<InvalidOperationException>();
        using var heap = ConcurrentHeap.Create(1 << 20, BuddyHeapOptions.ConcurrentDefault with { LateMisuseHandler = reports.Add });
        var blocks = new List<nint>();
        for (int i = 0; i < 200; i++)
        {
            blocks.Add((nint)heap.Allocate(s_small));
        }

        OtherThread.Run(() =>
        {
            foreach (nint block in blocks)
            {
                heap.Deallocate((void*)block, s_small);
            }
        });

        heap.Validate();
        Assert.Equal(0ul, heap.Stats.AllocatedBytes);
        var again = new HashSet<nint>();
        for (int i = 0; i < 400; i++)
        {
            Assert.True(again.Add((nint)heap.Allocate(s_small)), "an object was handed out twice");
        }

        Assert.Empty(reports);
        heap.Validate();
        Assert.Equal(400ul * 64, heap.Stats.AllocatedBytes);
    }

    [Fact]
    public void QuarantinedObjectCollectedWhenTheLocalListIsDry_GoesBackOnTheList_NotOverwrittenByFreshObjects()
    {
        // The first objects of a slab are linked about 4 KiB at a time: take them all, so that the local list is empty
        // when the quarantined object comes back through the collection, and the next refill links fresh objects.
        var reports = new List<InvalidOperationException>();
        using var heap = ConcurrentHeap.Create(1 << 20, BuddyHeapOptions.ConcurrentDefault with { LateMisuseHandler = reports.Add });
        var held = new List<nint>();
        for (int i = 0; i < 4096 / 64; i++)
        {
            held.Add((nint)heap.Allocate(s_small));
        }

        void* block = (void*)held[0];
        held.RemoveAt(0);
        heap.Deallocate(block, s_small);
        heap.ClaimAndPushAsAfterStaleRead(block);
        held.Add((nint)heap.Allocate(s_small)); // quarantines the claimed object, then the collection takes it back
        heap.Validate();
        Assert.Single(reports);

        var all = new HashSet<nint>(held);
        for (int i = 0; i < 200; i++)
        {
            Assert.True(all.Add((nint)heap.Allocate(s_small)), "an object was handed out twice");
        }

        Assert.Contains((nint)block, all);
        heap.Validate();
    }

    [Fact]
    public void OwnersRecognisedByStackExit_ThreadsThatMayReuseTheirStacks_KeepTheHeapValid_AndTheExitsAreReclaimed()
    {
        // Threads are recognised by their stacks, without a thread-static read. When one exits, a new thread may get the
        // same stack (glibc caches thread stacks): it then uses the exited owner's slabs until the exit is reclaimed,
        // which pauses that owner first. Either way the heap stays valid and nothing is lost.
        using var heap = ConcurrentHeap.Create(4 << 20);
        var kept = new System.Collections.Concurrent.ConcurrentBag<nint>();
        void Work(int seed)
        {
            var rng = new Random(seed);
            var live = new List<nint>();
            for (int i = 0; i < 20_000; i++)
            {
                if (live.Count == 0 || rng.Next(3) != 0)
                {
                    live.Add((nint)heap.Allocate(s_small));
                }
                else
                {
                    int at = rng.Next(live.Count);
                    heap.Deallocate((void*)live[at], s_small);
                    live[at] = live[^1];
                    live.RemoveAt(live.Count - 1);
                }
            }

            foreach (nint block in live.Take(50))
            {
                kept.Add(block);
            }

            foreach (nint block in live.Skip(50))
            {
                heap.Deallocate((void*)block, s_small);
            }
        }

        OtherThread.Run(() => Work(1));
        Assert.Equal(OperatingSystem.IsLinux() ? 1 : 0, heap.StackRecognisedOwners); // the stack is read with pthread_getattr_np
        for (int round = 0; round < 4; round++)
        {
            OtherThread.Run(() => Work(2 + round));
            heap.Validate();
        }

        heap.Trim(); // reclaims every exited thread, the owners recognised by their stacks among them
        Assert.Equal(0, heap.StackRecognisedOwners);
        OtherThread.Run(() => Work(10));
        heap.Validate();
        Assert.Equal(kept.Count, kept.Distinct().Count());
        foreach (nint block in kept)
        {
            heap.Deallocate((void*)block, s_small);
        }

        heap.Validate();
        Assert.Equal(0ul, heap.Stats.AllocatedBytes);
    }

    [Fact]
    public void ThreadsRunningAtOnce_EachOnItsOwnSlabs_RecognisedByStack_HeapValid()
    {
        using var heap = ConcurrentHeap.Create(8 << 20);
        using var start = new Barrier(3);
        var blocks = new System.Collections.Concurrent.ConcurrentBag<nint>();
        TestThread[] threads = [.. Enumerable.Range(0, 3).Select(t => TestThread.Start(() =>
        {
            start.SignalAndWait();
            var mine = new List<nint>();
            for (int i = 0; i < 30_000; i++)
            {
                mine.Add((nint)heap.Allocate(s_small));
                if (i % 3 == 2)
                {
                    heap.Deallocate((void*)mine[^2], s_small);
                    mine.RemoveAt(mine.Count - 2);
                }
            }

            foreach (nint block in mine)
            {
                blocks.Add(block);
            }
        }))];
        foreach (TestThread thread in threads)
        {
            thread.Join();
        }

        Assert.Equal(blocks.Count, blocks.Distinct().Count());
        heap.Validate();
        foreach (nint block in blocks)
        {
            heap.Deallocate((void*)block, s_small); // from this thread: frees from another thread into exited owners' slabs
        }

        heap.Validate();
        Assert.Equal(0ul, heap.Stats.AllocatedBytes);
    }
}
