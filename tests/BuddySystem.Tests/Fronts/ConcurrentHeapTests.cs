using System.Globalization;

namespace BuddySystem.Tests;

/// <summary>ConcurrentHeap: the engine's contract through per-thread caches, cross-thread frees, reclaiming, misuse.</summary>
public unsafe class ConcurrentHeapTests
{
    private static readonly Layout Small = new(16, 8);

    private static string Hex(void* p) => "0x" + ((ulong)p).ToString("x", CultureInfo.InvariantCulture);

    [Theory]
    [InlineData("lazy")]
    [InlineData("eager")]
    [InlineData("tiny-caches")]
    public void RandomOperations_MatchModelAndValidate(string configuration)
    {
        const nuint size = 1 << 20;
        using var heap = ConcurrentHeap.Create(size, BuddyHeapRandomTests.OptionsFor(configuration));
        BuddyHeapRandomTests.RunAgainstModel(heap, heap.Validate, () => heap.Stats, 0xC0FFEE, 300_000, size);
        heap.Trim();
        Assert.Equal((ulong)size, heap.Stats.LargestFreeBlock);
    }

    [Fact]
    public void DroppedWithoutDispose_AfterThisThreadUsedIt_IsCollected()
    {
        // The thread-statics that find this thread's caches and slabs must not keep a dropped heap alive: its trimmer would
        // run after every full collection for as long as the thread lives, and its owned memory would never be freed.
        WeakReference dropped = UseAndDrop();
        for (int i = 0; i < 5 && dropped.IsAlive; i++)
        {
            GC.Collect();
            GC.WaitForPendingFinalizers();
        }

        Assert.False(dropped.IsAlive);

        // A heap made afterwards on the same thread serves as usual.
        using var heap = ConcurrentHeap.Create(1 << 20);
        void* block = heap.Allocate(Small);
        heap.Deallocate(block, Small);
        heap.Validate();
    }

    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.NoInlining)]
    private static WeakReference UseAndDrop()
    {
        var heap = ConcurrentHeap.Create(1 << 20);
        void* small = heap.Allocate(Small);
        void* medium = heap.Allocate(new Layout(20000, 8));
        heap.Deallocate(small, Small);
        heap.Deallocate(medium, new Layout(20000, 8));
        return new WeakReference(heap);
    }

    [Fact]
    public void Deallocate_ManyBlocks_ThreadCacheStaysWithinItsBound()
    {
        using var heap = ConcurrentHeap.Create(1 << 20, BuddyHeapOptions.ConcurrentBuddyOnly);
        var blocks = new List<nint>();
        for (int i = 0; i < 3000; i++)
        {
            blocks.Add((nint)heap.Allocate(Small));
        }

        foreach (nint block in blocks)
        {
            heap.Deallocate((void*)block, Small);
        }

        HeapStats stats = heap.Stats;
        Assert.InRange(stats.CachedBytes, 16ul, (ulong)heap.Options.CacheCapacity * 16);
        Assert.Equal(0, stats.LiveBlocks);
        Assert.Equal(3000, stats.Allocations);
        heap.Validate();
    }

    [Fact]
    public void Deallocate_ManyObjects_KeepsAtMostOneEmptySlab()
    {
        using var heap = ConcurrentHeap.Create(1 << 20);
        var blocks = new List<nint>();
        for (int i = 0; i < 3000; i++)
        {
            blocks.Add((nint)heap.Allocate(Small));
        }

        foreach (nint block in blocks)
        {
            heap.Deallocate((void*)block, Small);
        }

        HeapStats stats = heap.Stats;
        Assert.InRange(stats.CachedBytes, 1ul, (ulong)SlabHeap.MaxSlabSize);
        Assert.Equal(1ul << 20, stats.LargestFreeBlock); // the kept slab is what an allocation that needs it gets back
        Assert.Equal(0, stats.LiveBlocks);
        Assert.Equal(3000, stats.Allocations);
        heap.Validate();
        Assert.True(heap.Allocate(new Layout(1 << 20, 8)) != null);
    }

    [Fact]
    public void Deallocate_FromAnotherThread_IsAcceptedCheckedAndMerged()
    {
        const nuint size = 1 << 22;
        using var heap = ConcurrentHeap.Create(size);
        var blocks = new nint[20_000];
        OtherThread.Run(() =>
        {
            for (int i = 0; i < blocks.Length; i++)
            {
                var layout = new Layout((nuint)(1 + (i % 200)), 8);
                byte* block = (byte*)heap.Allocate(layout);
                Assert.True(block != null);
                BuddyHeapRandomTests.Fill(block, layout.Size, (ulong)i * 0x9E3779B97F4A7C15 | 1);
                blocks[i] = (nint)block;
            }
        });
        OtherThread.Run(() =>
        {
            for (int i = 0; i < blocks.Length; i++)
            {
                var layout = new Layout((nuint)(1 + (i % 200)), 8);
                BuddyHeapRandomTests.Check((byte*)blocks[i], layout.Size, (ulong)i * 0x9E3779B97F4A7C15 | 1);
                heap.Deallocate((void*)blocks[i], layout);
            }

            // The second free of a block another thread allocated is caught like any double free.
            Assert.Throws<InvalidOperationException>(() => heap.Deallocate((void*)blocks[0], new Layout(1, 8)));
        });
        heap.Validate();
        heap.Trim(); // both threads have exited: their caches come back
        HeapStats stats = heap.Stats;
        Assert.Equal(0, stats.LiveBlocks);
        Assert.Equal(0ul, stats.AllocatedBytes);
        Assert.Equal(0ul, stats.UserBytes);
        Assert.Equal(0ul, stats.CachedBytes);
        Assert.Equal((ulong)size, stats.LargestFreeBlock);
    }

    [Fact]
    public void Trim_ExitedThreadsHeldCaches_HeapIsFullyMerged()
    {
        const nuint size = 1 << 24;
        using var heap = ConcurrentHeap.Create(size);
        var threads = new List<TestThread>();
        int failures = 0;
        for (int t = 0; t < 4; t++)
        {
            var thread = TestThread.Create(() =>
            {
                var live = new List<(nint, Layout)>();
                for (int i = 0; i < 2000; i++)
                {
                    var layout = new Layout((nuint)(1 + (i * 37 % 1000)), 8);
                    void* block = heap.Allocate(layout);
                    if (block == null)
                    {
                        Interlocked.Increment(ref failures);
                        continue;
                    }

                    live.Add(((nint)block, layout));
                }

                foreach ((nint block, Layout layout) in live)
                {
                    heap.Deallocate((void*)block, layout);
                }
            });
            thread.Start();
            threads.Add(thread);
        }

        TestThread.JoinAll(threads);
        Assert.Equal(0, failures);
        Assert.NotEqual(0ul, heap.Stats.FreeBytes);
        heap.Trim();
        heap.Validate();
        Assert.Equal(0ul, heap.Stats.CachedBytes);
        Assert.Equal((ulong)size, heap.Stats.LargestFreeBlock);
        Assert.Single(heap.Stats.FreeBlocksByOrder, count => count != 0);
    }

    [Fact]
    public void Deallocate_Misuse_ThrowsNamingAddressAndChangesNothing()
    {
        using var heap = ConcurrentHeap.Create(1 << 16);
        using var other = ConcurrentHeap.Create(4096);
        byte* live = (byte*)heap.Allocate(new Layout(64, 8));
        byte* freed = (byte*)heap.Allocate(new Layout(64, 8));
        byte* large = (byte*)heap.Allocate(new Layout(10_000, 8));
        heap.Deallocate(freed, new Layout(64, 8));
        void* foreign = other.Allocate(Small);
        HeapStats before = heap.Stats;

        Assert.Contains(Hex(freed), Assert.Throws<InvalidOperationException>(() => heap.Deallocate(freed, new Layout(64, 8))).Message, StringComparison.Ordinal);
        Assert.Contains(Hex(live + 16), Assert.Throws<ArgumentException>(() => heap.Deallocate(live + 16, Small)).Message, StringComparison.Ordinal);
        Assert.Contains(Hex(live + 3), Assert.Throws<ArgumentException>(() => heap.Deallocate(live + 3, new Layout(64, 8))).Message, StringComparison.Ordinal);
        Assert.Equal("layout", Assert.Throws<ArgumentException>(() => heap.Deallocate(live, new Layout(65, 8))).ParamName);
        Assert.Equal("layout", Assert.Throws<ArgumentException>(() => heap.Deallocate(large, new Layout(100, 8))).ParamName);
        Assert.Contains("outside every region", Assert.Throws<ArgumentException>(() => heap.Deallocate(foreign, Small)).Message, StringComparison.Ordinal);
        Assert.ThrowsAny<ArgumentException>(() => heap.Deallocate(null, Small));
        Assert.Throws<InvalidOperationException>(() => heap.Reallocate(freed, new Layout(64, 8), 500));

        heap.Validate();
        HeapStats after = heap.Stats;
        Assert.Equal(before.AllocatedBytes, after.AllocatedBytes);
        Assert.Equal(before.FreeBlocksByOrder, after.FreeBlocksByOrder);
        heap.Deallocate(live, new Layout(64, 8));
        heap.Deallocate(large, new Layout(10_000, 8));
        other.Deallocate(foreign, Small);
        heap.Validate();
    }

    [Fact]
    public void Allocate_TwoHeapsAlternatingOnOneThread_EachServesItsOwnBlocks()
    {
        using var first = ConcurrentHeap.Create(1 << 16);
        using var second = ConcurrentHeap.Create(1 << 16);
        for (int i = 0; i < 1000; i++)
        {
            void* a = first.Allocate(Small);
            void* b = second.Allocate(Small);
            first.Deallocate(a, Small);
            second.Deallocate(b, Small);
        }

        first.Validate();
        second.Validate();
        Assert.Equal(1000, first.Stats.Allocations);
        Assert.Equal(1000, second.Stats.Allocations);
    }

    [Fact]
    public void Reallocate_SameAndOtherBlockSize_KeepsBytes()
    {
        using var heap = ConcurrentHeap.Create(1 << 16);
        byte* block = (byte*)heap.Allocate(new Layout(20, 8));
        block[0] = 42;
        Assert.True(heap.Reallocate(block, new Layout(20, 8), 30) == block);
        byte* moved = (byte*)heap.Reallocate(block, new Layout(30, 8), 5000);
        Assert.Equal(42, moved[0]);
        Assert.Equal(5000ul, heap.Stats.UserBytes);
        heap.Deallocate(moved, new Layout(5000, 8));
        heap.Validate();
        Assert.Equal(0ul, heap.Stats.UserBytes);
    }

    [Fact]
    public void Dispose_LaterCalls_ThrowObjectDisposed()
    {
        var heap = ConcurrentHeap.Create(1 << 16);
        void* block = heap.Allocate(Small);
        heap.Deallocate(heap.Allocate(Small), Small);
        heap.Dispose();
        heap.Dispose();
        Assert.Throws<ObjectDisposedException>(() => heap.Allocate(Small));
        Assert.Throws<ObjectDisposedException>(() => heap.Deallocate(block, Small));
        Assert.Throws<ObjectDisposedException>(() => heap.Trim());
        Assert.Throws<ObjectDisposedException>(() => heap.Stats);
    }

    [Fact]
    public void AddRegion_SecondRegion_ServesFromIt()
    {
        using var region = new TestRegion(4096, 4096);
        using var heap = new ConcurrentHeap(BuddyHeapOptions.ConcurrentBuddyOnly);
        Assert.True(heap.Allocate(Small) == null);
        heap.AddRegion(region.Pointer, region.Size);
        void* block = heap.Allocate(Small);
        Assert.True(region.Pointer == (byte*)block);
        heap.Deallocate(block, Small);
        heap.Validate();
        Assert.Equal(1, heap.Stats.FailedAllocations);
    }

    [Fact]
    public void AddRegion_SecondRegionWithSizeClasses_ServesObjectsFromIt()
    {
        using var region = new TestRegion(1 << 16, 1 << 16);
        using var heap = new ConcurrentHeap();
        Assert.True(heap.Allocate(Small) == null);
        heap.AddRegion(region.Pointer, region.Size);
        byte* block = (byte*)heap.Allocate(Small);
        Assert.True(block >= region.Pointer && block < region.Pointer + region.Size);
        Assert.Equal((nuint)16, heap.UsableSize(block));
        heap.Deallocate(block, Small);
        heap.Validate();
        Assert.Equal(1, heap.Stats.FailedAllocations);
    }

    [Fact]
    public void Stats_FreeWithLargerSizeOfSameBlock_UserBytesDoesNotWrap()
    {
        using var heap = ConcurrentHeap.Create(1 << 20);
        void* block = heap.Allocate(new Layout(1, 1));
        heap.Deallocate(block, new Layout(16, 1));
        HeapStats stats = heap.Stats;
        Assert.Equal(0, stats.LiveBlocks);
        Assert.Equal(0ul, stats.UserBytes);
    }

    [Fact]
    public void Allocate_RetrySucceedsAfterReturningCaches_CountsNoFailure()
    {
        using var heap = ConcurrentHeap.Create(256 << 10);
        void* parked = heap.Allocate(new Layout(64 << 10, 1));
        heap.Deallocate(parked, new Layout(64 << 10, 1)); // parked in this thread's cache, so the core cannot merge the whole heap
        void* whole = heap.Allocate(new Layout(256 << 10, 1));
        Assert.True(whole != null);
        Assert.Equal(0, heap.Stats.FailedAllocations);
        heap.Deallocate(whole, new Layout(256 << 10, 1));
        heap.Validate();
    }

    [Fact]
    public void Reallocate_LargeBlockWhileMemoryIsCached_ReturnsCachesAndSucceeds()
    {
        using var heap = ConcurrentHeap.Create(512 << 10);
        var large = new Layout(128 << 10, 1);
        byte* block = (byte*)heap.Allocate(large);
        block[0] = 42;
        var parked = new List<nint>();
        for (int i = 0; i < 4; i++)
        {
            parked.Add((nint)heap.Allocate(new Layout(64 << 10, 1)));
        }

        foreach (nint p in parked)
        {
            heap.Deallocate((void*)p, new Layout(64 << 10, 1));
        }

        byte* grown = (byte*)heap.Reallocate(block, large, 256 << 10);
        Assert.True(grown != null);
        Assert.Equal(42, grown[0]);
        Assert.Equal(0, heap.Stats.FailedAllocations);
        heap.Deallocate(grown, new Layout(256 << 10, 1));
        heap.Validate();
    }
}
