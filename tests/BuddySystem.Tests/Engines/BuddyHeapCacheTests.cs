namespace BuddySystem.Tests;

/// <summary>The lazy layer: bounded caches, batch refill and flush, exact misuse checks on cached blocks, Trim.</summary>
public unsafe class BuddyHeapCacheTests
{
    private static readonly Layout Small = new(16, 8);

    [Fact]
    public void Deallocate_ManyBlocksOfOneOrder_CacheStaysWithinItsBound()
    {
        using var heap = BuddyHeap.Create(1 << 20);
        var blocks = new List<nint>();
        for (int i = 0; i < 5000; i++)
        {
            blocks.Add((nint)heap.Allocate(Small));
        }

        int capacity = heap.Options.CacheCapacity;
        foreach (nint block in blocks)
        {
            heap.Deallocate((void*)block, Small);
            Assert.InRange(heap.Stats.CachedBytes, 0ul, (ulong)capacity * 16);
        }

        Assert.NotEqual(0ul, heap.Stats.CachedBytes);
        heap.Validate();
    }

    [Theory]
    [InlineData(0)]
    [InlineData(4)]
    [InlineData(8)]
    public void Deallocate_EveryCachedOrder_BoundIsMinOfBlocksAndBytes(int order)
    {
        var options = new BuddyHeapOptions { CacheCapacity = 16, CacheBytesPerOrder = 1024 };
        using var heap = BuddyHeap.Create(1 << 22, options);
        var layout = new Layout((nuint)16 << order, 8);
        var blocks = new List<nint>();
        for (int i = 0; i < 200; i++)
        {
            blocks.Add((nint)heap.Allocate(layout));
        }

        ulong bound = (ulong)Math.Max(2, Math.Min(16, 1024 >> (order + 4))) * (16ul << order);
        ulong peak = 0;
        foreach (nint block in blocks)
        {
            heap.Deallocate((void*)block, layout);
            peak = Math.Max(peak, heap.Stats.CachedBytes);
        }

        Assert.Equal(bound, peak);
        heap.Validate();
    }

    [Fact]
    public void Allocate_LifoPair_ReusesTheCachedBlock()
    {
        using var heap = BuddyHeap.Create(1 << 25);
        void* first = heap.Allocate(Small);
        ulong cachedAfterRefill = heap.Stats.CachedBytes;
        heap.Deallocate(first, Small);
        Assert.Equal(cachedAfterRefill + 16, heap.Stats.CachedBytes);
        void* second = heap.Allocate(Small);
        Assert.True(first == second);
        Assert.Equal(cachedAfterRefill, heap.Stats.CachedBytes);
        heap.Validate();
    }

    [Fact]
    public void Allocate_EmptyCache_RefillsOneBatchOfConsecutiveBlocks()
    {
        using var heap = BuddyHeap.Create(1 << 20);
        byte* first = (byte*)heap.Allocate(Small);
        int batch = heap.Options.CacheCapacity / 2;
        Assert.Equal((ulong)(batch - 1) * 16, heap.Stats.CachedBytes);
        for (int i = 1; i < batch; i++)
        {
            Assert.True(heap.Allocate(Small) == first + (16 * i));
        }

        Assert.Equal(0ul, heap.Stats.CachedBytes);
        heap.Validate();
    }

    [Fact]
    public void Deallocate_CachedBlockFreedAgain_ThrowsAndChangesNothing()
    {
        using var heap = BuddyHeap.Create(1 << 16);
        void* block = heap.Allocate(Small);
        heap.Deallocate(block, Small);
        HeapStats before = heap.Stats;
        var error = Assert.Throws<InvalidOperationException>(() => heap.Deallocate(block, Small));
        Assert.Contains($"0x{(ulong)block:x}", error.Message, StringComparison.Ordinal);
        Assert.Equal(before, heap.Stats with { FreeBlocksByOrder = before.FreeBlocksByOrder });
        Assert.Equal(before.FreeBlocksByOrder, heap.Stats.FreeBlocksByOrder);
        Assert.Throws<InvalidOperationException>(() => heap.Reallocate(block, Small, 100));
        heap.Validate();
    }

    [Fact]
    public void Deallocate_CachedBlockWithOtherLayout_StillReportsDoubleFree()
    {
        using var heap = BuddyHeap.Create(1 << 16);
        void* block = heap.Allocate(new Layout(64, 8));
        heap.Deallocate(block, new Layout(64, 8));
        Assert.Throws<InvalidOperationException>(() => heap.Deallocate(block, Small));
        heap.Validate();
    }

    [Fact]
    public void Trim_AfterFreeingEverything_HeapIsFullyMerged()
    {
        const nuint size = 3 << 20; // two regions' worth of top blocks: 2 MiB and 1 MiB
        using var heap = BuddyHeap.Create(size);
        IReadOnlyList<long> fresh = heap.Stats.FreeBlocksByOrder;
        var rng = new BuddySystem.Testing.SplitMix64(7);
        var live = new List<(nint Block, Layout Layout)>();
        for (int i = 0; i < 20_000; i++)
        {
            if (live.Count > 0 && rng.Next(3) == 0)
            {
                int index = (int)rng.Next((ulong)live.Count);
                heap.Deallocate((void*)live[index].Block, live[index].Layout);
                live[index] = live[^1];
                live.RemoveAt(live.Count - 1);
            }
            else
            {
                var layout = new Layout((nuint)(1 + rng.Next(5000)), 8);
                void* block = heap.Allocate(layout);
                if (block != null)
                {
                    live.Add(((nint)block, layout));
                }
            }
        }

        foreach ((nint block, Layout layout) in live)
        {
            heap.Deallocate((void*)block, layout);
        }

        Assert.NotEqual(0ul, heap.Stats.CachedBytes);
        heap.Trim();
        heap.Validate();
        HeapStats stats = heap.Stats;
        Assert.Equal(0ul, stats.CachedBytes);
        Assert.Equal(2ul << 20, stats.LargestFreeBlock);
        Assert.Equal(fresh, stats.FreeBlocksByOrder);
        Assert.Equal((ulong)size, stats.FreeBytes);
    }

    [Fact]
    public void Allocate_MemoryParkedInCaches_TrimsAndServesLargeBlock()
    {
        using var heap = BuddyHeap.Create(1024);
        var blocks = new List<nint>();
        for (int i = 0; i < 64; i++)
        {
            blocks.Add((nint)heap.Allocate(Small));
        }

        Assert.True(heap.Allocate(Small) == null);
        foreach (nint block in blocks)
        {
            heap.Deallocate((void*)block, Small);
        }

        Assert.Equal(1024ul, heap.Stats.CachedBytes);
        void* whole = heap.Allocate(new Layout(1024, 1));
        Assert.True(whole != null);
        Assert.Equal(0ul, heap.Stats.CachedBytes);
        heap.Validate();
    }

    [Fact]
    public void Eager_Deallocate_NeverCaches()
    {
        using var heap = BuddyHeap.Create(1 << 16, BuddyHeapOptions.Eager);
        void* block = heap.Allocate(Small);
        heap.Deallocate(block, Small);
        Assert.Equal(0ul, heap.Stats.CachedBytes);
        Assert.Equal(1ul << 16, heap.Stats.LargestFreeBlock);
        heap.Validate();
    }

    [Fact]
    public void Validate_CacheLinkPointsAtLiveBlock_ThrowsCorruption()
    {
        using var heap = BuddyHeap.Create(1 << 16);
        byte* live = (byte*)heap.Allocate(Small);
        byte* parked = (byte*)heap.Allocate(Small);
        heap.Deallocate(parked, Small);
        *(byte**)parked = live; // a use-after-free write corrupting the cache link
        Assert.Throws<HeapCorruptionException>(heap.Validate);
    }

    [Theory]
    [InlineData(-1, 64)]
    [InlineData(16, 64)]
    [InlineData(8, 1)]
    [InlineData(8, 5000)]
    public void Constructor_OptionsOutOfRange_Throws(int maxCachedOrder, int capacity)
    {
        var options = new BuddyHeapOptions { MaxCachedOrder = maxCachedOrder, CacheCapacity = capacity };
        Assert.Throws<ArgumentOutOfRangeException>(() => new BuddyHeap(options));
    }
}
