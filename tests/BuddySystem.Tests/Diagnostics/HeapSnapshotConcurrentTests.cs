using BuddySystem.Diagnostics;

namespace BuddySystem.Tests;

public unsafe class HeapSnapshotConcurrentTests
{
    [Fact]
    public void Of_ConcurrentHeap_ShowsLiveAndThreadCachedBlocks()
    {
        using var heap = ConcurrentHeap.Create(1 << 16, BuddyHeapOptions.ConcurrentDefault with { SizeClassSlabs = false });
        var blocks = new List<nint>();
        for (int i = 0; i < 10; i++)
        {
            blocks.Add((nint)heap.Allocate(new Layout(40, 8)));
        }

        heap.Deallocate((void*)blocks[0], new Layout(40, 8));

        HeapSnapshot snapshot = HeapSnapshot.Of(heap);
        HeapStats stats = heap.Stats;

        Assert.Equal(9, snapshot.LiveBlocks);
        Assert.Equal(9ul * 64, snapshot.AllocatedBytes);
        Assert.Equal(stats.FreeBytes, snapshot.FreeBytes);
        Assert.Equal(0ul, snapshot.UnknownBytes);
        Assert.Contains(snapshot.Blocks, b => b.Offset == (ulong)blocks[0] - snapshot.BaseAddress && b.State == BlockState.Cached);
        ulong expected = 0;
        foreach (HeapBlock block in snapshot.Blocks)
        {
            Assert.Equal(expected, block.Offset);
            expected = block.End;
        }

        Assert.Equal(1ul << 16, expected);

        // The snapshot maps cached blocks as they lie; Stats counts them as the blocks they merge into: what Trim leaves.
        heap.Trim();
        Assert.Equal(stats.FreeBlocksByOrder, HeapSnapshot.Of(heap).FreeBlocksByOrder);
    }

    [Fact]
    public void Of_ConcurrentHeapWithObjects_DrawsEachSlabAsItsObjectsAndAgreesWithStats()
    {
        using var heap = ConcurrentHeap.Create(1 << 20);
        var layout = new Layout(40, 8);
        var blocks = new List<nint>();
        for (int i = 0; i < 10; i++)
        {
            blocks.Add((nint)heap.Allocate(layout));
        }

        heap.Deallocate((void*)blocks[0], layout);
        void* large = heap.Allocate(new Layout(100_000, 8));

        HeapSnapshot snapshot = HeapSnapshot.Of(heap);
        HeapStats stats = heap.Stats;
        HeapSlab slab = Assert.Single(snapshot.Slabs);
        Assert.Equal(48u, slab.ObjectSize);
        Assert.Equal(9, slab.LiveObjects);
        Assert.Equal(10, snapshot.LiveBlocks); // nine objects and the 128 KiB block
        Assert.Equal(stats.AllocatedBytes, snapshot.AllocatedBytes);
        Assert.Equal(stats.LiveBlocks, snapshot.LiveBlocks);
        Assert.Equal(0ul, snapshot.UnknownBytes);
        Assert.Contains(snapshot.Blocks, b => b.Offset == (ulong)blocks[0] - snapshot.BaseAddress && b.State == BlockState.Cached && b.Size == 48);
        heap.Deallocate(large, new Layout(100_000, 8));
    }
}
