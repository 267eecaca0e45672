using BuddySystem.Diagnostics;

namespace BuddySystem.Tests;

public unsafe class HeapSnapshotTests
{
    [Fact]
    public void Of_OneSmallAllocation_ShowsTheSplitChain()
    {
        using var region = new TestRegion(256, 256);
        using var heap = new BuddyHeap(BuddyHeapOptions.Eager); // the tutorial's split chain, not a lazy batch
        heap.AddRegion(region.Pointer, 256);
        heap.Allocate(new Layout(10, 8));

        HeapSnapshot snapshot = HeapSnapshot.Of(heap);

        // 256 B split down to 16 B: allocated 16 @0, then free 16 @16, 32 @32, 64 @64, 128 @128.
        Assert.Equal(
            [
                new HeapBlock(0, 0, 16, BlockState.Allocated),
                new HeapBlock(16, 0, 16, BlockState.Free),
                new HeapBlock(32, 1, 32, BlockState.Free),
                new HeapBlock(64, 2, 64, BlockState.Free),
                new HeapBlock(128, 3, 128, BlockState.Free),
            ],
            snapshot.Blocks);
        Assert.Equal((ulong)region.Pointer, snapshot.BaseAddress);
        Assert.Equal([1L, 1, 1, 1, 0], snapshot.FreeBlocksByOrder);
        Assert.Equal(5, snapshot.OrderCount);
        Assert.Equal(240ul, snapshot.FreeBytes);
        Assert.Equal(16ul, snapshot.AllocatedBytes);
        Assert.Equal(256ul, snapshot.TotalBytes);
        Assert.Equal(128ul, snapshot.LargestFreeBlock);
        Assert.Equal(1, snapshot.LiveBlocks);

        // free = 1 + 2 + 4 + 8 = 15 granules, 4 blocks. Order 4 (256 B): nothing suitable.
        Assert.Equal(1.0, snapshot.UnusableFreeIndex(4));
        Assert.Equal(1 - ((1 + (15.0 / 16)) / 4), snapshot.FragmentationIndex(4), 12);
        // Order 2 (64 B): suitable = 1 + 2 = 3 → (15 − 12) / 15.
        Assert.Equal(3.0 / 15, snapshot.UnusableFreeIndex(2), 12);
        Assert.Equal(-1.0, snapshot.FragmentationIndex(2));
    }

    [Fact]
    public void Of_BusyHeap_LeavesTheHeapUnchangedAndAgreesWithStats()
    {
        using var region = new TestRegion(1 << 16, 1 << 16);
        using var heap = new BuddyHeap();
        heap.AddRegion(region.Pointer, 1 << 16);
        var rng = new Random(7);
        var live = new List<(nint Block, Layout Layout)>();
        for (int i = 0; i < 400; i++)
        {
            if (live.Count > 0 && rng.Next(3) == 0)
            {
                int index = rng.Next(live.Count);
                heap.Deallocate((void*)live[index].Block, live[index].Layout);
                live.RemoveAt(index);
            }
            else
            {
                var layout = new Layout((nuint)rng.Next(1, 600), 8);
                void* block = heap.Allocate(layout);
                if (block != null)
                {
                    live.Add(((nint)block, layout));
                }
            }
        }

        HeapStats before = heap.Stats;
        HeapSnapshot snapshot = HeapSnapshot.Of(heap);
        HeapStats after = heap.Stats;

        Assert.Equal(before, after with { FreeBlocksByOrder = before.FreeBlocksByOrder });
        Assert.Equal(before.FreeBlocksByOrder, after.FreeBlocksByOrder);
        heap.Validate();
        Assert.Equal(before.FreeBlocksByOrder, snapshot.FreeBlocksByOrder);
        Assert.Equal(before.AllocatedBytes, snapshot.AllocatedBytes);
        Assert.Equal(before.FreeBytes, snapshot.FreeBytes); // both count cached blocks as free
        Assert.Equal(before.CachedBytes, snapshot.CachedBytes);
        Assert.Equal(before.LargestFreeBlock, snapshot.LargestFreeBlock);
        Assert.Equal(before.LiveBlocks, snapshot.LiveBlocks);
        Assert.Equal(0ul, snapshot.UnknownBytes);

        // The blocks tile the heap, each aligned to its size, and every live block is one of them.
        ulong expected = 0;
        foreach (HeapBlock block in snapshot.Blocks)
        {
            Assert.Equal(expected, block.Offset);
            Assert.Equal(0ul, block.Offset % block.Size);
            expected = block.End;
        }

        Assert.Equal(1ul << 16, expected);
        foreach ((nint block, Layout _) in live)
        {
            Assert.Contains(snapshot.Blocks, b => b.Offset == (ulong)block - snapshot.BaseAddress && b.State == BlockState.Allocated);
        }
    }

    [Fact]
    public void Of_TwoRegionsWithAGap_SpanCoversTheGap()
    {
        using var region = new TestRegion(1024, 1024);
        using var heap = new BuddyHeap();
        heap.AddRegion(region.Pointer + 512, 256);
        heap.AddRegion(region.Pointer, 128);

        HeapSnapshot snapshot = HeapSnapshot.Of(heap);

        Assert.Equal((ulong)region.Pointer, snapshot.BaseAddress);
        Assert.Equal([new HeapBlock(0, 3, 128, BlockState.Free), new HeapBlock(512, 4, 256, BlockState.Free)], snapshot.Blocks);
        Assert.Equal(384ul, snapshot.TotalBytes);
        Assert.Equal(768ul, snapshot.SpanBytes);
        Assert.Equal([0L, 0, 0, 1, 1], snapshot.FreeBlocksByOrder);
    }

    [Fact]
    public void Of_EagerLockedHeap_ReadsTheEngine()
    {
        using var heap = LockedHeap.Create(4096, options: BuddyHeapOptions.Eager);
        void* block = heap.Allocate(new Layout(1000, 8));

        HeapSnapshot snapshot = HeapSnapshot.Of(heap);

        Assert.Equal([new HeapBlock(0, 6, 1024, BlockState.Allocated), new HeapBlock(1024, 6, 1024, BlockState.Free), new HeapBlock(2048, 7, 2048, BlockState.Free)], snapshot.Blocks);
        heap.Deallocate(block, new Layout(1000, 8));
        Assert.Equal([new HeapBlock(0, 8, 4096, BlockState.Free)], HeapSnapshot.Of(heap).Blocks);
    }

    [Fact]
    public void Of_LazyLockedHeap_ShowsCachedBlocksUntilTrim()
    {
        using var heap = LockedHeap.Create(4096);
        void* block = heap.Allocate(new Layout(1000, 8));
        heap.Deallocate(block, new Layout(1000, 8));

        HeapSnapshot snapshot = HeapSnapshot.Of(heap);
        HeapStats stats = heap.Stats;

        // The lazy layer parks freed (and batch-refilled) blocks unmerged: they show as cached, and count as free bytes.
        Assert.Contains(snapshot.Blocks, b => b.State == BlockState.Cached);
        Assert.Equal(stats.CachedBytes, snapshot.CachedBytes);
        Assert.Equal(stats.FreeBytes, snapshot.FreeBytes);
        Assert.Equal(4096ul, snapshot.FreeBytes);
        Assert.Equal(stats.FreeBlocksByOrder, snapshot.FreeBlocksByOrder);
        heap.Trim();
        Assert.Equal([new HeapBlock(0, 8, 4096, BlockState.Free)], HeapSnapshot.Of(heap).Blocks);
    }

    [Fact]
    public void Of_EmptyHeap_HasNoBlocks()
    {
        using var heap = new BuddyHeap();
        HeapSnapshot snapshot = HeapSnapshot.Of(heap);
        Assert.Empty(snapshot.Blocks);
        Assert.Equal(0, snapshot.OrderCount);
        Assert.Equal(1.0, snapshot.UnusableFreeIndex(0));
    }

    [Theory]
    [InlineData(0x80 | 3, BlockState.Free)]
    [InlineData(0x40 | 5, BlockState.Allocated)]
    [InlineData(0x20 | 1, BlockState.Cached)]
    [InlineData(0x10 | 1, BlockState.Unknown)]
    [InlineData(0xC0 | 1, BlockState.Unknown)]
    [InlineData(0x00, BlockState.Unknown)]
    public void ClassifyState_StateByte_MapsToBlockState(int state, BlockState expected)
    {
        Assert.Equal(expected, BuddyHeap.ClassifyState((byte)state));
    }

    [Fact]
    public void Constructor_OverlappingBlocks_Throws()
    {
        Assert.Throws<ArgumentException>(() => new HeapSnapshot([new HeapBlock(0, 1, 32, BlockState.Free), new HeapBlock(16, 0, 16, BlockState.Free)], 16, 2));
        Assert.Throws<ArgumentException>(() => new HeapSnapshot([], 24, 2));
    }
}
