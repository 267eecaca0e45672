using System.Globalization;
using System.Numerics;
using System.Reflection;
using BuddySystem.Internals;
using BuddySystem.Testing;

namespace BuddySystem.Tests;

public class BuddyTreeTests
{
    private static string Dec(ulong value) => value.ToString(CultureInfo.InvariantCulture);

    [Fact]
    public void Readme_Example_ServesAndFrees()
    {
        var tree = new BuddyTree(capacity: 1UL << 30, minBlock: 4096);
        ulong vertices = tree.Allocate(200_000);
        bool ok = tree.TryAllocate(64 << 10, align: 1 << 16, out ulong uniforms);
        tree.Free(vertices);
        Assert.True(ok);
        Assert.Equal(0ul, uniforms % (1 << 16));
        Assert.Equal(512ul << 20, tree.Stats.LargestFreeBlock);
        tree.Validate();
    }

    // ---- construction ----

    [Fact]
    public void New_Defaults_WholeCapacityFreeAsOneBlock()
    {
        var tree = new BuddyTree(1 << 16);
        Assert.Equal(1ul << 16, tree.Capacity);
        Assert.Equal(8ul, tree.MinBlockSize);
        Assert.Equal(BuddyPlacement.BestFit, tree.Placement);
        BuddyTreeStats stats = tree.Stats;
        Assert.Equal(1ul << 16, stats.Capacity);
        Assert.Equal(1ul << 16, stats.UsableBytes);
        Assert.Equal(0ul, stats.AllocatedBytes);
        Assert.Equal(1ul << 16, stats.FreeBytes);
        Assert.Equal(1ul << 16, stats.LargestFreeBlock);
        Assert.Equal(0, stats.LiveBlocks);
        Assert.Equal(8ul, stats.MinBlockSize);
        Assert.Equal(14, stats.FreeBlocksByOrder.Count); // orders 0..13: 8 B .. 64 KiB
        Assert.Equal(1, stats.FreeBlocksByOrder[13]);
        Assert.Equal(1, stats.FreeBlocksByOrder.Sum());
        tree.Validate();
    }

    [Fact]
    public void New_EightMiBWithEightByteBlocks_MetadataIsCapacityOverFour()
    {
        var tree = new BuddyTree(8 << 20, 8);
        Assert.Equal((8ul << 20) / 4, tree.Stats.MetadataBytes);
    }

    [Fact]
    public void New_OneTiBWith64KiBBlocks_ConstructsAndServes()
    {
        const ulong capacity = 1UL << 40;
        var tree = new BuddyTree(capacity, 65536);
        Assert.Equal(32ul << 20, tree.Stats.MetadataBytes);
        Assert.Equal(capacity, tree.Stats.LargestFreeBlock);
        ulong half = tree.Allocate(capacity / 2);
        ulong small = tree.Allocate(1);
        ulong big = tree.Allocate(100UL << 30); // 100 GiB -> a 128 GiB block
        Assert.Equal(65536ul, tree.SizeOf(small));
        Assert.Equal(128ul << 30, tree.SizeOf(big));
        Assert.Equal(0ul, big % (128ul << 30));
        Assert.NotEqual(half, small);
        Assert.Equal((capacity / 2) + 65536 + (128ul << 30), tree.Stats.AllocatedBytes);
        tree.Free(big);
        tree.Free(small);
        tree.Free(half);
        Assert.Equal(capacity, tree.Stats.LargestFreeBlock);
        Assert.Equal(0ul, tree.Stats.AllocatedBytes);
    }

    [Fact]
    public void New_CapacityNotPowerOfTwo_NeverHandsOutSpaceAtOrBeyondCapacity()
    {
        // 44 bytes in 8-byte blocks: 5 usable blocks (0..40), a 4-byte tail never handed out, a tree of 8 leaves.
        var tree = new BuddyTree(44, 8);
        BuddyTreeStats stats = tree.Stats;
        Assert.Equal(40ul, stats.UsableBytes);
        Assert.Equal(40ul, stats.FreeBytes);
        Assert.Equal(32ul, stats.LargestFreeBlock);
        Assert.Equal(new long[] { 1, 0, 1, 0 }, stats.FreeBlocksByOrder); // 8 bytes at 32, 32 bytes at 0
        Assert.Equal(16ul, stats.MetadataBytes);
        Assert.False(tree.TryAllocate(64, 1, out _));

        var offsets = new List<ulong>();
        while (tree.TryAllocate(8, 1, out ulong offset))
        {
            Assert.True(offset + 8 <= 40, $"offset {offset} runs past the usable space");
            offsets.Add(offset);
        }

        Assert.Equal(new ulong[] { 0, 8, 16, 24, 32 }, offsets.Order());
        Assert.Equal(0ul, tree.Stats.LargestFreeBlock);
        tree.Validate();
    }

    [Theory]
    [InlineData(8ul)]
    [InlineData(15ul)]
    public void New_CapacityOfOneMinBlock_ServesOneBlock(ulong capacity)
    {
        var tree = new BuddyTree(capacity, 8);
        Assert.Equal(2ul, tree.Stats.MetadataBytes);
        Assert.Equal(0ul, tree.Allocate(1));
        Assert.False(tree.TryAllocate(1, 1, out _));
        Assert.Equal(8ul, tree.SizeOf(0));
        tree.Validate();
        tree.Free(0);
        Assert.Throws<ArgumentException>(() => tree.Free(0));
        Assert.Equal(8ul, tree.Stats.LargestFreeBlock);
    }

    [Fact]
    public void New_CapacityNearTopOfULong_ServesWithoutOverflow()
    {
        var tree = new BuddyTree(ulong.MaxValue, 1UL << 40); // 2^24 - 1 blocks of 1 TiB
        Assert.Equal(1UL << 63, tree.Stats.LargestFreeBlock);
        Assert.Equal(0ul, tree.Allocate(1UL << 63));
        Assert.Equal(1UL << 63, tree.Allocate(1UL << 62));
        ulong last = tree.Allocate(1);
        Assert.True(last < ulong.MaxValue - (1UL << 40) + 1);
        tree.Validate();
        tree.Free(last);
        tree.Free(0);
        Assert.Equal(1UL << 63, tree.Stats.LargestFreeBlock);
    }

    [Theory]
    [InlineData(0ul)]
    [InlineData(3ul)]
    [InlineData(24ul)]
    public void New_MinBlockNotPowerOfTwo_ThrowsArgumentException(ulong minBlock)
    {
        var error = Assert.Throws<ArgumentException>(() => new BuddyTree(1024, minBlock));
        Assert.Equal("minBlock", error.ParamName);
    }

    [Fact]
    public void New_CapacitySmallerThanMinBlock_ThrowsArgumentException()
    {
        var error = Assert.Throws<ArgumentException>(() => new BuddyTree(7, 8));
        Assert.Equal("capacity", error.ParamName);
        Assert.Throws<ArgumentException>(() => new BuddyTree(0));
    }

    [Fact]
    public void New_TreeTooLarge_ThrowsArgumentExceptionSuggestingLargerMinBlock()
    {
        var error = Assert.Throws<ArgumentException>(() => new BuddyTree(1UL << 40, 8));
        Assert.Equal("capacity", error.ParamName);
        Assert.Contains("larger minimum block", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void New_UnknownPlacement_ThrowsArgumentOutOfRange()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => new BuddyTree(1024, 8, (BuddyPlacement)7));
    }

    // ---- allocation ----

    [Theory]
    [InlineData(1ul, 1ul, 8ul)]
    [InlineData(8ul, 1ul, 8ul)]
    [InlineData(9ul, 1ul, 16ul)]
    [InlineData(100ul, 8ul, 128ul)]
    [InlineData(8ul, 256ul, 256ul)]
    [InlineData(4097ul, 8ul, 8192ul)]
    public void TryAllocate_SizeAndAlign_BlockIsPowerOfTwoAlignedToItsSize(ulong size, ulong align, ulong expectedBlock)
    {
        var tree = new BuddyTree(1 << 16);
        tree.Allocate(8); // push later blocks off offset 0
        Assert.True(tree.TryAllocate(size, align, out ulong offset));
        Assert.Equal(0ul, offset % expectedBlock);
        Assert.Equal(expectedBlock, tree.SizeOf(offset));
        Assert.Equal(8 + expectedBlock, tree.Stats.AllocatedBytes);
        tree.Validate();
    }

    [Fact]
    public void TryAllocate_ZeroSize_GetsUniqueMinBlocks()
    {
        var tree = new BuddyTree(1024, 16);
        Assert.True(tree.TryAllocate(0, 1, out ulong a));
        Assert.True(tree.TryAllocate(0, 1, out ulong b));
        Assert.NotEqual(a, b);
        Assert.Equal(16ul, tree.SizeOf(a));
        Assert.Equal(32ul, tree.Stats.AllocatedBytes);
    }

    [Fact]
    public void TryAllocate_TooLarge_ReturnsFalseAndTreeUnchanged()
    {
        var tree = new BuddyTree(1024);
        tree.Allocate(8);
        BuddyTreeStats before = tree.Stats;
        Assert.False(tree.TryAllocate(1024, 1, out ulong offset));
        Assert.Equal(0ul, offset);
        Assert.False(tree.TryAllocate(ulong.MaxValue, 1, out _));
        Assert.False(tree.TryAllocate(1, 1UL << 63, out _));
        Assert.Equal(before, tree.Stats with { FreeBlocksByOrder = before.FreeBlocksByOrder });
        Assert.Equal(before.FreeBlocksByOrder, tree.Stats.FreeBlocksByOrder);
        tree.Validate();
    }

    [Theory]
    [InlineData(0ul)]
    [InlineData(3ul)]
    [InlineData(12ul)]
    public void TryAllocate_AlignNotPowerOfTwo_ThrowsArgumentException(ulong align)
    {
        var tree = new BuddyTree(1024);
        var error = Assert.Throws<ArgumentException>(() => tree.TryAllocate(8, align, out _));
        Assert.Equal("align", error.ParamName);
        Assert.Equal(0ul, tree.Stats.AllocatedBytes);
    }

    [Fact]
    public void Allocate_Exhausted_ThrowsHeapExhaustedNamingRequestAndLargestBlock()
    {
        var tree = new BuddyTree(1024);
        tree.Allocate(512);
        tree.Allocate(8);
        var error = Assert.Throws<HeapExhaustedException>(() => tree.Allocate(300, 4));
        Assert.Equal(300ul, error.RequestedSize);
        Assert.Equal(4ul, error.RequestedAlign);
        Assert.Equal(1024ul - 520, error.FreeBytes);
        Assert.Equal(256ul, error.LargestFreeBlock);
        Assert.Contains("300 bytes", error.Message, StringComparison.Ordinal);
        Assert.Contains("largest free block 256 bytes", error.Message, StringComparison.Ordinal);
        Assert.Equal(520ul, tree.Stats.AllocatedBytes);
        tree.Validate();
    }

    [Fact]
    public void Allocate_DefaultAlign_IsOne()
    {
        var tree = new BuddyTree(64, 8, BuddyPlacement.LeftFirst);
        Assert.Equal(0ul, tree.Allocate(3));
        Assert.Equal(8ul, tree.Allocate(3));
    }

    [Fact]
    public void TryAllocateAndFree_SteadyState_NoGcAllocations()
    {
        var tree = new BuddyTree(1 << 20);
        var live = new ulong[1000];

        void Churn()
        {
            var rng = new SplitMix64(0xA110C);
            int count = 0;
            for (int op = 0; op < 20_000; op++)
            {
                if (count == 0 || (count < live.Length && rng.Next(2) == 0))
                {
                    Assert.True(tree.TryAllocate(1 + rng.Next(512), 8, out live[count]));
                    count++;
                }
                else
                {
                    int index = (int)rng.Next((ulong)count);
                    tree.Free(live[index]);
                    live[index] = live[--count];
                }
            }

            while (count > 0)
            {
                tree.Free(live[--count]);
            }
        }

        // The first pass runs while the JIT compiles and tiers up the loop and the tree's methods (the runtime's own
        // allocations for that may land on this thread); only the second, steady pass is measured.
        Churn();
        long before = GC.GetAllocatedBytesForCurrentThread();
        Churn();
        Assert.Equal(0, GC.GetAllocatedBytesForCurrentThread() - before);
    }

    // ---- placement ----

    [Theory]
    [InlineData(BuddyPlacement.BestFit, 0ul)]
    [InlineData(BuddyPlacement.LeftFirst, 0ul)]
    [InlineData(BuddyPlacement.RightFirst, 56ul)]
    public void Allocate_OnEmptyTree_PlacementDecidesTheEnd(BuddyPlacement placement, ulong expected)
    {
        var tree = new BuddyTree(64, 8, placement);
        Assert.Equal(expected, tree.Allocate(8));
    }

    /// <summary>
    /// Eight 8-byte units laid out as [free free | hole used | hole used | free free]: the requests 8, 16, 8, 16 fit
    /// exactly. Best fit fills the two holes with the two small requests; first fit (either direction) splits a free pair
    /// for the first small request, and the last 16-byte request finds no pair left.
    /// </summary>
    [Theory]
    [InlineData(BuddyPlacement.BestFit, true)]
    [InlineData(BuddyPlacement.RightFirst, false)]
    [InlineData(BuddyPlacement.LeftFirst, false)]
    public void Allocate_HolesBesideFreePairs_OnlyBestFitServesEverything(BuddyPlacement placement, bool servesAll)
    {
        var tree = new BuddyTree(64, 8, placement);
        for (int i = 0; i < 8; i++)
        {
            tree.Allocate(8);
        }

        foreach (ulong offset in new ulong[] { 0, 8, 16, 32, 48, 56 })
        {
            tree.Free(offset);
        }

        Assert.Equal(new long[] { 2, 2, 0, 0 }, tree.Stats.FreeBlocksByOrder);
        bool all = true;
        foreach (ulong size in new ulong[] { 8, 16, 8, 16 })
        {
            all &= tree.TryAllocate(size, 1, out _);
        }

        Assert.Equal(servesAll, all);
        tree.Validate();
    }

    [Fact]
    public void Allocate_BestFit_TakesExactHoleWhereLeftFirstSplitsLargeBlock()
    {
        var best = new BuddyTree(64, 8, BuddyPlacement.BestFit);
        var first = new BuddyTree(64, 8, BuddyPlacement.LeftFirst);
        foreach (BuddyTree tree in new[] { best, first })
        {
            tree.Allocate(32); // [0, 32)
            tree.Allocate(16); // [32, 48)
            tree.Allocate(8);  // [48, 56)
            tree.Free(0);      // a free 32-byte block at 0 and a free 8-byte hole at 56
        }

        Assert.Equal(56ul, best.Allocate(8));
        Assert.Equal(0ul, first.Allocate(8));
    }

    // ---- free ----

    [Fact]
    public void Free_BuddiesBothFree_MergeBackToWholeTree()
    {
        var tree = new BuddyTree(1024);
        ulong a = tree.Allocate(512);
        ulong b = tree.Allocate(256);
        ulong c = tree.Allocate(256);
        Assert.Equal(0ul, tree.Stats.LargestFreeBlock);
        tree.Free(b);
        Assert.Equal(256ul, tree.Stats.LargestFreeBlock);
        tree.Free(c);
        Assert.Equal(512ul, tree.Stats.LargestFreeBlock);
        tree.Free(a);
        Assert.Equal(1024ul, tree.Stats.LargestFreeBlock);
        Assert.Equal(1, tree.Stats.FreeBlocksByOrder[^1]);
        Assert.Equal(0, tree.Stats.LiveBlocks);
        tree.Validate();
    }

    [Fact]
    public void Free_WithMatchingSize_Frees()
    {
        var tree = new BuddyTree(1024);
        ulong a = tree.Allocate(100);
        tree.Free(a, 100);
        ulong b = tree.Allocate(65);
        tree.Free(b, 128); // any size that maps to the same block
        Assert.Equal(0ul, tree.Stats.AllocatedBytes);
    }

    [Fact]
    public void Free_WithSizeAndAlign_FreesAlignEnlargedBlock()
    {
        var tree = new BuddyTree(1024);
        ulong a = tree.Allocate(8, 256);
        BuddyTreeStats before = tree.Stats;
        var error = Assert.Throws<ArgumentException>(() => tree.Free(a, 8));
        Assert.Contains("256 bytes", error.Message, StringComparison.Ordinal);
        Assert.Equal(before.AllocatedBytes, tree.Stats.AllocatedBytes);
        tree.Free(a, 8, 256);
        Assert.Equal(0ul, tree.Stats.AllocatedBytes);
    }

    [Fact]
    public void Free_WithWrongSize_ThrowsNamingOffsetAndTreeUnchanged()
    {
        var tree = new BuddyTree(1024);
        tree.Allocate(8);
        ulong a = tree.Allocate(64);
        AssertMisuseLeavesTreeUnchanged(tree, () => tree.Free(a, 200), a);
        AssertMisuseLeavesTreeUnchanged(tree, () => tree.Free(a, 8), a);
        AssertMisuseLeavesTreeUnchanged(tree, () => tree.Free(a, ulong.MaxValue), a);
        Assert.Throws<ArgumentException>(() => tree.Free(a, 64, 3));
        tree.Free(a, 64);
    }

    [Fact]
    public void SizeOf_LiveBlock_ReturnsBlockSize()
    {
        var tree = new BuddyTree(1 << 20, 16);
        Assert.Equal(16ul, tree.SizeOf(tree.Allocate(1)));
        Assert.Equal(1024ul, tree.SizeOf(tree.Allocate(1000)));
        Assert.Equal(4096ul, tree.SizeOf(tree.Allocate(10, 4096)));
    }

    [Fact]
    public void SizeOf_WholeTreeAllocated_ReturnsCapacityWithoutReadingPastRoot()
    {
        // buddy2.c's size query reads out of bounds when the allocated node is the root.
        var tree = new BuddyTree(4096);
        ulong whole = tree.Allocate(4096);
        Assert.Equal(4096ul, tree.SizeOf(whole));
        tree.Free(whole);
        var error = Assert.Throws<ArgumentException>(() => tree.SizeOf(0));
        Assert.Contains("already freed", error.Message, StringComparison.Ordinal);
    }

    // ---- misuse ----

    private static void AssertMisuseLeavesTreeUnchanged(BuddyTree tree, Action misuse, ulong offset)
    {
        BuddyTreeStats before = tree.Stats;
        var error = Assert.Throws<ArgumentException>(misuse);
        Assert.Contains(Dec(offset), error.Message, StringComparison.Ordinal);
        tree.Validate();
        BuddyTreeStats after = tree.Stats;
        Assert.Equal(before.AllocatedBytes, after.AllocatedBytes);
        Assert.Equal(before.LiveBlocks, after.LiveBlocks);
        Assert.Equal(before.LargestFreeBlock, after.LargestFreeBlock);
        Assert.Equal(before.FreeBlocksByOrder, after.FreeBlocksByOrder);
    }

    private static BuddyTree TreeWithLiveBlockAt64(out ulong block)
    {
        var tree = new BuddyTree(1024, 8, BuddyPlacement.LeftFirst);
        tree.Allocate(64);
        block = tree.Allocate(64);
        Assert.Equal(64ul, block);
        return tree;
    }

    [Theory]
    [InlineData(72ul)]  // a minimum-block multiple inside the 64-byte block at 64: buddy2.c would free the whole block
    [InlineData(96ul)]
    [InlineData(65ul)]  // inside a minimum block
    public void Free_InteriorOffset_ThrowsNamingOffsetAndTreeUnchanged(ulong interior)
    {
        BuddyTree tree = TreeWithLiveBlockAt64(out ulong block);
        AssertMisuseLeavesTreeUnchanged(tree, () => tree.Free(interior), interior);
        AssertMisuseLeavesTreeUnchanged(tree, () => tree.SizeOf(interior), interior);
        tree.Free(block);
        tree.Free(0);
        Assert.Equal(1024ul, tree.Stats.LargestFreeBlock);
    }

    [Theory]
    [InlineData(128ul)]
    [InlineData(512ul)]
    [InlineData(1016ul)]
    public void Free_NeverAllocated_ThrowsNamingOffsetAndTreeUnchanged(ulong offset)
    {
        BuddyTree tree = TreeWithLiveBlockAt64(out _);
        AssertMisuseLeavesTreeUnchanged(tree, () => tree.Free(offset), offset);
    }

    [Fact]
    public void Free_DoubleFree_ThrowsNamingOffsetAndTreeUnchanged()
    {
        BuddyTree tree = TreeWithLiveBlockAt64(out ulong block);
        tree.Free(block);
        var error = Assert.Throws<ArgumentException>(() => tree.Free(block));
        Assert.Equal("offset", error.ParamName);
        AssertMisuseLeavesTreeUnchanged(tree, () => tree.Free(block), block);
        AssertMisuseLeavesTreeUnchanged(tree, () => tree.Free(block, 64), block);
    }

    [Theory]
    [InlineData(1024ul)]
    [InlineData(4096ul)]
    [InlineData(ulong.MaxValue)]
    public void Free_OutOfRange_ThrowsNamingOffsetAndTreeUnchanged(ulong offset)
    {
        BuddyTree tree = TreeWithLiveBlockAt64(out _);
        AssertMisuseLeavesTreeUnchanged(tree, () => tree.Free(offset), offset);
    }

    [Fact]
    public void Free_BetweenUsableEndAndCapacity_ThrowsOutOfRange()
    {
        var tree = new BuddyTree(44, 8); // usable [0, 40)
        var error = Assert.Throws<ArgumentException>(() => tree.Free(40));
        Assert.Contains("outside the usable space", error.Message, StringComparison.Ordinal);
        tree.Validate();
    }

    [Fact]
    public void Free_BlockWhoseBuddyIsAllocated_OnlyThatBlockFreed()
    {
        // The interior offset of a block whose subtree is wholly used by two children must not be mistaken for the parent.
        var tree = new BuddyTree(64, 8, BuddyPlacement.LeftFirst);
        ulong a = tree.Allocate(16);
        ulong b = tree.Allocate(16);
        Assert.Equal(16ul, b);
        AssertMisuseLeavesTreeUnchanged(tree, () => tree.Free(8), 8);
        AssertMisuseLeavesTreeUnchanged(tree, () => tree.Free(24), 24);
        tree.Free(a);
        Assert.Equal(16ul, tree.SizeOf(b));
        tree.Validate();
    }

    // ---- validate ----

    [Fact]
    public void Validate_CorruptedNode_ThrowsHeapCorruption()
    {
        var tree = new BuddyTree(1024);
        tree.Allocate(64);
        tree.Validate();
        byte[] nodes = (byte[])typeof(BuddyTree).GetField("_nodes", BindingFlags.NonPublic | BindingFlags.Instance)!.GetValue(tree)!;
        nodes[1] = 0;
        var error = Assert.Throws<HeapCorruptionException>(tree.Validate);
        Assert.StartsWith(HeapCorruptionException.Prefix, error.Message, StringComparison.Ordinal);
        Assert.Contains("tree node 1", error.Message, StringComparison.Ordinal);
    }

    // ---- model-based random runs ----

    public static TheoryData<BuddyPlacement, ulong, ulong, ulong> RandomConfigurations => new()
    {
        { BuddyPlacement.BestFit, 1UL << 16, 8, 0x5EED },
        { BuddyPlacement.RightFirst, (1UL << 16) - 4100, 8, 0xBEEF },
        { BuddyPlacement.LeftFirst, 50_001, 16, 0xF00D },
    };

    /// <summary>
    /// One million random operations against a model (a bitmap of used minimum blocks and a map of live blocks): every
    /// allocation is in range, aligned to its block size and disjoint from every live block; an allocation fails exactly
    /// when no aligned free run of its block size exists; misuse probes throw and change nothing; Validate every 1 000.
    /// </summary>
    [Theory]
    [MemberData(nameof(RandomConfigurations))]
    public void RandomOperations_OneMillion_MatchModelAndValidate(BuddyPlacement placement, ulong capacity, ulong minBlock, ulong seed)
    {
        var tree = new BuddyTree(capacity, minBlock, placement);
        int minShift = BitOperations.TrailingZeroCount(minBlock);
        ulong units = capacity >> minShift;
        int treeUnits = (int)BitOperations.RoundUpToPowerOf2(units);
        var used = new UnitBitmap(treeUnits);
        used.Mark((int)units, treeUnits - (int)units, true); // space beyond the capacity is never free

        var live = new Dictionary<ulong, (ulong Size, ulong Align, ulong Block)>();
        var liveOffsets = new List<ulong>();
        ulong allocatedModel = 0;
        var rng = new SplitMix64(seed);
        int failures = 0;
        for (int op = 1; op <= 1_000_000; op++)
        {
            ulong roll = rng.Next(100);
            if (live.Count == 0 || roll < 50)
            {
                int e = (int)rng.Next(rng.Next(100) == 0 ? 15UL : 10UL);
                ulong size = (1UL << e) + rng.Next(1UL << e) - 1;
                ulong align = 1UL << (int)rng.Next(rng.Next(50) == 0 ? 14UL : 5UL);
                ulong block = Math.Max(Math.Max(BitOperations.RoundUpToPowerOf2(size), align), minBlock);
                int blockUnits = (int)(block >> minShift);
                if (tree.TryAllocate(size, align, out ulong offset))
                {
                    if (offset % block != 0 || offset + block > capacity || !used.IsFree((int)(offset >> minShift), blockUnits))
                    {
                        Assert.Fail($"op {op}: block {offset}+{block} is misaligned, passes the capacity {capacity}, or overlaps a live block");
                    }

                    used.Mark((int)(offset >> minShift), blockUnits, true);
                    live.Add(offset, (size, align, block));
                    liveOffsets.Add(offset);
                    allocatedModel += block;
                }
                else
                {
                    failures++;
                    if (used.HasAlignedFreeRun(blockUnits))
                    {
                        Assert.Fail($"op {op}: allocation of block {block} failed though an aligned free run exists");
                    }
                }
            }
            else if (roll < 98)
            {
                int index = (int)rng.Next((ulong)liveOffsets.Count);
                ulong offset = liveOffsets[index];
                liveOffsets[index] = liveOffsets[^1];
                liveOffsets.RemoveAt(liveOffsets.Count - 1);
                (ulong size, ulong align, ulong block) = live[offset];
                live.Remove(offset);
                Assert.Equal(block, tree.SizeOf(offset));
                switch (roll % 3)
                {
                    case 0:
                        tree.Free(offset);
                        break;
                    case 1:
                        tree.Free(offset, size, align);
                        break;
                    default:
                        if (Math.Max(BitOperations.RoundUpToPowerOf2(size), minBlock) == block)
                        {
                            tree.Free(offset, size);
                        }
                        else
                        {
                            tree.Free(offset);
                        }

                        break;
                }

                used.Mark((int)(offset >> minShift), (int)(block >> minShift), false);
                allocatedModel -= block;
            }
            else
            {
                // A misuse probe: any offset that does not start a live block must be rejected without change.
                ulong probe = rng.Next(2) == 0 ? rng.Next(capacity + minBlock) : rng.Next(capacity >> minShift) << minShift;
                if (!live.ContainsKey(probe))
                {
                    Assert.Throws<ArgumentException>(() => tree.Free(probe));
                }
            }

            if (op % 1000 == 0)
            {
                tree.Validate();
                BuddyTreeStats stats = tree.Stats;
                Assert.Equal(allocatedModel, stats.AllocatedBytes);
                Assert.Equal(live.Count, stats.LiveBlocks);
            }
        }

        Assert.InRange(failures, 1, 400_000); // the run reaches full-tree situations, but mostly serves
        foreach (ulong offset in liveOffsets)
        {
            tree.Free(offset);
        }

        tree.Validate();
        BuddyTreeStats end = tree.Stats;
        Assert.Equal(0ul, end.AllocatedBytes);
        Assert.Equal(units << minShift, end.FreeBytes);
        ulong largest = 1UL << (Orders.FloorLog2(units) + minShift);
        Assert.Equal(largest, end.LargestFreeBlock);
    }
}
