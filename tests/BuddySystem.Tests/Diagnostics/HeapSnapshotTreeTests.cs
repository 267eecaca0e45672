using BuddySystem.Diagnostics;

namespace BuddySystem.Tests;

public class HeapSnapshotTreeTests
{
    [Fact]
    public void Of_TreeWithOneSmallBlock_ShowsTheSplitChain()
    {
        var tree = new BuddyTree(64, 8);
        Assert.Equal(0ul, tree.Allocate(5));

        HeapSnapshot snapshot = HeapSnapshot.Of(tree);

        Assert.Equal(
            [
                new HeapBlock(0, 0, 8, BlockState.Allocated),
                new HeapBlock(8, 0, 8, BlockState.Free),
                new HeapBlock(16, 1, 16, BlockState.Free),
                new HeapBlock(32, 2, 32, BlockState.Free),
            ],
            snapshot.Blocks);
        Assert.Equal(0ul, snapshot.BaseAddress);
        Assert.Equal(4, snapshot.OrderCount);
        Assert.Equal(tree.Stats.FreeBlocksByOrder, snapshot.FreeBlocksByOrder);
    }

    [Fact]
    public void Of_BothHalvesAllocated_ShowsTwoBlocksNotTheirParent()
    {
        // Both leaves allocated make the root read 0 as an allocated root would; the children tell them apart.
        var tree = new BuddyTree(16, 8);
        tree.Allocate(8);
        tree.Allocate(8);
        Assert.Equal([new HeapBlock(0, 0, 8, BlockState.Allocated), new HeapBlock(8, 0, 8, BlockState.Allocated)], HeapSnapshot.Of(tree).Blocks);

        var whole = new BuddyTree(16, 8);
        whole.Allocate(16);
        Assert.Equal([new HeapBlock(0, 1, 16, BlockState.Allocated)], HeapSnapshot.Of(whole).Blocks);
    }

    [Fact]
    public void Of_CapacityNotAPowerOfTwo_LeavesTheTailOut()
    {
        var tree = new BuddyTree(24, 8);
        Assert.Equal([new HeapBlock(0, 1, 16, BlockState.Free), new HeapBlock(16, 0, 8, BlockState.Free)], HeapSnapshot.Of(tree).Blocks);

        ulong offset = tree.Allocate(8);
        HeapSnapshot snapshot = HeapSnapshot.Of(tree);
        Assert.Contains(new HeapBlock(offset, 0, 8, BlockState.Allocated), snapshot.Blocks);
        Assert.Equal(24ul, snapshot.TotalBytes);
        Assert.Equal(24ul, snapshot.SpanBytes);
    }

    [Fact]
    public void Of_RandomTree_AgreesWithStatsAndTilesTheUsableSpace()
    {
        var tree = new BuddyTree(100_000, 16);
        var rng = new Random(11);
        var live = new List<ulong>();
        for (int i = 0; i < 2000; i++)
        {
            if (live.Count > 0 && rng.Next(5) < 2)
            {
                int index = rng.Next(live.Count);
                tree.Free(live[index]);
                live.RemoveAt(index);
            }
            else if (tree.TryAllocate((ulong)rng.Next(1, 3000), 1, out ulong offset))
            {
                live.Add(offset);
            }
        }

        HeapSnapshot snapshot = HeapSnapshot.Of(tree);
        BuddyTreeStats stats = tree.Stats;

        Assert.Equal(stats.FreeBlocksByOrder, snapshot.FreeBlocksByOrder);
        Assert.Equal(stats.AllocatedBytes, snapshot.AllocatedBytes);
        Assert.Equal(stats.FreeBytes, snapshot.FreeBytes);
        Assert.Equal(stats.LargestFreeBlock, snapshot.LargestFreeBlock);
        Assert.Equal(live.Count, snapshot.LiveBlocks);
        ulong expected = 0;
        foreach (HeapBlock block in snapshot.Blocks)
        {
            Assert.Equal(expected, block.Offset);
            expected = block.End;
        }

        Assert.Equal(stats.UsableBytes, expected);
        foreach (ulong offset in live)
        {
            Assert.Contains(snapshot.Blocks, b => b.Offset == offset && b.State == BlockState.Allocated && b.Size == tree.SizeOf(offset));
        }
    }
}
