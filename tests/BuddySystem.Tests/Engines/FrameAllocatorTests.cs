using System.Numerics;
using BuddySystem.Testing;

namespace BuddySystem.Tests;

public class FrameAllocatorTests
{
    private static void AssertUnchangedAfter(FrameAllocator frames, Action misuse, string named)
    {
        long[] before = [.. frames.FreeBlocksByOrder];
        ulong allocated = frames.AllocatedFrames;
        ulong total = frames.TotalFrames;
        var error = Assert.Throws<ArgumentException>(misuse);
        Assert.Contains(named, error.Message, StringComparison.Ordinal);
        Assert.Equal(before, frames.FreeBlocksByOrder);
        Assert.Equal(allocated, frames.AllocatedFrames);
        Assert.Equal(total, frames.TotalFrames);
        frames.Validate();
    }

    // ---- construction and AddFrames ----

    [Fact]
    public void New_Defaults_ThirtyTwoOrdersNoFrames()
    {
        var frames = new FrameAllocator();
        Assert.Equal(32, frames.OrderCount);
        Assert.Equal(0ul, frames.TotalFrames);
        Assert.Equal(0ul, frames.FreeFrames);
        Assert.Equal(32, frames.FreeBlocksByOrder.Count);
        Assert.Null(frames.Allocate(1));
        frames.Validate();
    }

    [Theory]
    [InlineData(0)]
    [InlineData(65)]
    public void New_OrdersOutOfRange_ThrowsArgumentOutOfRange(int orders)
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => new FrameAllocator(orders));
    }

    [Fact]
    public void AddFrames_RangeFromFrameZero_IsOneBlockNotThirtyTwoFrameBlocks()
    {
        // The crate takes the lowest set bit of 0 as 32 and cuts [0, 1024) into 32 blocks of 32 frames.
        var frames = new FrameAllocator();
        frames.AddFrames(0, 1024);
        Assert.Equal(1, frames.FreeBlocksByOrder[10]);
        Assert.Equal(1, frames.FreeBlocksByOrder.Sum());
        Assert.Equal(0ul, frames.Allocate(1024));
        Assert.Equal(0ul, frames.FreeFrames);
        frames.Validate();
    }

    [Fact]
    public void AddFrames_UnalignedRange_CutIntoLargestAlignedBlocks()
    {
        var frames = new FrameAllocator();
        frames.AddFrames(3, 17); // 3 | 4..8 | 8..16 | 16
        Assert.Equal(new long[] { 2, 0, 1, 1 }, frames.FreeBlocksByOrder.Take(4));
        Assert.Equal(14ul, frames.TotalFrames);
        Assert.Equal(14ul, frames.FreeFrames);
        frames.Validate();
    }

    [Fact]
    public void AddFrames_TouchingRanges_BuddiesMerge()
    {
        var frames = new FrameAllocator();
        frames.AddFrames(4, 8);
        frames.AddFrames(0, 4);
        Assert.Equal(1, frames.FreeBlocksByOrder[3]);
        Assert.Equal(1, frames.FreeBlocksByOrder.Sum());
        Assert.Equal(0ul, frames.Allocate(8));
        frames.Validate();
    }

    [Fact]
    public void AddFrames_HighFrameNumbers_Served()
    {
        var frames = new FrameAllocator();
        frames.AddFrames(ulong.MaxValue - 16, ulong.MaxValue);
        Assert.Equal(16ul, frames.TotalFrames);
        Assert.Equal(ulong.MaxValue - 15, frames.Allocate(8)); // 2^64 - 16 is aligned to 16; 2^64 - 17 is a lone frame
        Assert.Equal(ulong.MaxValue - 7, frames.Allocate(4));
        frames.Validate();
    }

    [Fact]
    public void AddFrames_Overlapping_ThrowsNamingBothAndNothingChanges()
    {
        var frames = new FrameAllocator();
        frames.AddFrames(100, 200);
        AssertUnchangedAfter(frames, () => frames.AddFrames(150, 250), "[100, 200)");
        AssertUnchangedAfter(frames, () => frames.AddFrames(0, 101), "[0, 101)");
        AssertUnchangedAfter(frames, () => frames.AddFrames(120, 130), "[120, 130)");
        frames.AddFrames(200, 300); // touching is fine
        Assert.Equal(200ul, frames.TotalFrames);
    }

    [Fact]
    public void AddFrames_EndBeforeStart_ThrowsAndEmptyAddsNothing()
    {
        var frames = new FrameAllocator();
        Assert.Throws<ArgumentException>(() => frames.AddFrames(10, 5));
        frames.AddFrames(7, 7);
        Assert.Equal(0ul, frames.TotalFrames);
        frames.AddFrames(0, 16);
        frames.AddFrames(16, 16); // empty ranges overlap nothing
        Assert.Equal(16ul, frames.TotalFrames);
    }

    // ---- Allocate and AllocateAligned ----

    [Theory]
    [InlineData(0ul, 1ul)]
    [InlineData(1ul, 1ul)]
    [InlineData(3ul, 4ul)]
    [InlineData(4ul, 4ul)]
    [InlineData(5ul, 8ul)]
    [InlineData(100ul, 128ul)]
    public void Allocate_Count_RoundedToPowerOfTwoAlignedToItsSize(ulong count, ulong block)
    {
        var frames = new FrameAllocator();
        frames.AddFrames(1, 1 << 12);
        ulong? start = frames.Allocate(count);
        Assert.NotNull(start);
        Assert.Equal(0ul, start.Value % block);
        Assert.Equal(block, frames.AllocatedFrames);
        frames.Validate();
    }

    [Fact]
    public void Allocate_SplitsHandingOutLowerHalf()
    {
        var frames = new FrameAllocator();
        frames.AddFrames(0, 8);
        Assert.Equal(0ul, frames.Allocate(1));
        Assert.Equal(new long[] { 1, 1, 1, 0 }, frames.FreeBlocksByOrder.Take(4));
        Assert.Equal(2ul, frames.Allocate(2));
        Assert.Equal(1ul, frames.Allocate(1));
        Assert.Equal(4ul, frames.Allocate(4));
        Assert.Null(frames.Allocate(1));
        frames.Validate();
    }

    [Fact]
    public void Allocate_BestFit_TakesSmallestBlockThatFitsBeforeSplittingLargerOne()
    {
        var frames = new FrameAllocator();
        frames.AddFrames(0, 8);   // one block of 8
        frames.AddFrames(18, 20); // one block of 2 at 18
        frames.AddFrames(9, 10);  // one block of 1 at 9
        Assert.Equal(9ul, frames.Allocate(1));
        Assert.Equal(18ul, frames.Allocate(1));
        Assert.Equal(19ul, frames.Allocate(1));
        Assert.Equal(0ul, frames.Allocate(1));
        frames.Validate();
    }

    [Fact]
    public void Allocate_EqualBlocks_LowestFrameFirst()
    {
        var frames = new FrameAllocator();
        frames.AddFrames(100, 101);
        frames.AddFrames(5, 6);
        frames.AddFrames(51, 52);
        Assert.Equal(5ul, frames.Allocate(1));
        Assert.Equal(51ul, frames.Allocate(1));
        frames.Deallocate(5, 1);
        Assert.Equal(5ul, frames.Allocate(1));
        Assert.Equal(100ul, frames.Allocate(1));
        Assert.Null(frames.Allocate(1));
    }

    [Fact]
    public void Allocate_LargerThanTopOrder_ReturnsNull()
    {
        var frames = new FrameAllocator(4); // blocks of at most 8 frames
        frames.AddFrames(0, 64);
        Assert.Null(frames.Allocate(9));
        Assert.Null(frames.Allocate(ulong.MaxValue));
        Assert.Equal(0ul, frames.AllocatedFrames);
        Assert.Equal(0ul, frames.Allocate(8));
    }

    [Fact]
    public void AllocateAligned_AlignLargerThanCount_BlockAlignedToAlign()
    {
        var frames = new FrameAllocator();
        frames.AddFrames(1, 32); // 1 | 2..4 | 4..8 | 8..16 | 16..32
        Assert.Equal(8ul, frames.AllocateAligned(1, 8));
        Assert.Equal(8ul, frames.AllocatedFrames);
        Assert.Equal(16ul, frames.AllocateAligned(3, 16));
        Assert.Null(frames.AllocateAligned(1, 64));
        frames.Validate();
    }

    [Theory]
    [InlineData(0ul)]
    [InlineData(3ul)]
    public void AllocateAligned_AlignNotPowerOfTwo_Throws(ulong align)
    {
        var frames = new FrameAllocator();
        frames.AddFrames(0, 16);
        var error = Assert.Throws<ArgumentException>(() => frames.AllocateAligned(1, align));
        Assert.Equal("align", error.ParamName);
        Assert.Equal(0ul, frames.AllocatedFrames);
    }

    // ---- Deallocate ----

    [Fact]
    public void Deallocate_AllBlocks_MergeBackToOneBlock()
    {
        var frames = new FrameAllocator();
        frames.AddFrames(0, 16);
        ulong a = frames.Allocate(4)!.Value;
        ulong b = frames.Allocate(1)!.Value;
        ulong c = frames.Allocate(8)!.Value;
        frames.Deallocate(c, 8);
        frames.Deallocate(a, 4);
        frames.Deallocate(b, 1);
        Assert.Equal(1, frames.FreeBlocksByOrder[4]);
        Assert.Equal(1, frames.FreeBlocksByOrder.Sum());
        Assert.Equal(16ul, frames.FreeFrames);
        frames.Validate();
    }

    [Fact]
    public void Deallocate_TwoTopOrderBlocks_BothKept()
    {
        // The crate merges two top-order blocks into an order it has no list for, losing both.
        var frames = new FrameAllocator(4); // top order 3: 8 frames
        frames.AddFrames(0, 16);
        Assert.Equal(2, frames.FreeBlocksByOrder[3]);
        ulong a = frames.Allocate(8)!.Value;
        ulong b = frames.Allocate(8)!.Value;
        Assert.Null(frames.Allocate(1));
        frames.Deallocate(a, 8);
        frames.Deallocate(b, 8);
        Assert.Equal(2, frames.FreeBlocksByOrder[3]);
        Assert.Equal(16ul, frames.FreeFrames);
        frames.Validate();
        Assert.NotNull(frames.Allocate(8));
        Assert.NotNull(frames.Allocate(8));
    }

    [Fact]
    public void Deallocate_TopOrderOfDefaultOrders_BothKept()
    {
        var frames = new FrameAllocator(); // top order 31
        frames.AddFrames(0, 1UL << 32);
        Assert.Equal(2, frames.FreeBlocksByOrder[31]);
        ulong a = frames.Allocate(1UL << 31)!.Value;
        ulong b = frames.Allocate(1UL << 31)!.Value;
        frames.Deallocate(b, 1UL << 31);
        frames.Deallocate(a, 1UL << 31);
        Assert.Equal(1UL << 32, frames.FreeFrames);
        Assert.Equal(2, frames.FreeBlocksByOrder[31]);
        frames.Validate();
    }

    [Fact]
    public void Deallocate_AlignedAllocationWithItsCount_Frees()
    {
        var frames = new FrameAllocator();
        frames.AddFrames(0, 64);
        ulong a = frames.AllocateAligned(2, 16)!.Value;
        frames.Deallocate(a, 2); // the count given to AllocateAligned
        ulong b = frames.AllocateAligned(2, 16)!.Value;
        frames.Deallocate(b, 16); // or the block size
        Assert.Equal(0ul, frames.AllocatedFrames);
        frames.Validate();
    }

    [Fact]
    public void Deallocate_NeverAllocated_ThrowsNamingFrameAndNothingChanges()
    {
        var frames = new FrameAllocator();
        frames.AddFrames(0, 64);
        frames.Allocate(8);
        AssertUnchangedAfter(frames, () => frames.Deallocate(1000, 1), "1000");
        AssertUnchangedAfter(frames, () => frames.Deallocate(32, 32), "32"); // a free block never handed out
    }

    [Fact]
    public void Deallocate_InteriorFrame_ThrowsNamingFrameAndNothingChanges()
    {
        var frames = new FrameAllocator();
        frames.AddFrames(0, 64);
        ulong a = frames.Allocate(8)!.Value;
        AssertUnchangedAfter(frames, () => frames.Deallocate(a + 4, 4), (a + 4).ToString(System.Globalization.CultureInfo.InvariantCulture));
        frames.Deallocate(a, 8);
    }

    [Fact]
    public void Deallocate_DoubleFree_ThrowsNamingFrameAndNothingChanges()
    {
        var frames = new FrameAllocator();
        frames.AddFrames(0, 64);
        frames.Allocate(1);
        ulong a = frames.Allocate(4)!.Value;
        frames.Deallocate(a, 4);
        AssertUnchangedAfter(frames, () => frames.Deallocate(a, 4), a.ToString(System.Globalization.CultureInfo.InvariantCulture));
    }

    [Fact]
    public void Deallocate_WrongCount_ThrowsAndNothingChanges()
    {
        var frames = new FrameAllocator();
        frames.AddFrames(0, 64);
        frames.Allocate(1);
        ulong a = frames.Allocate(4)!.Value;
        AssertUnchangedAfter(frames, () => frames.Deallocate(a, 1), a.ToString(System.Globalization.CultureInfo.InvariantCulture));
        AssertUnchangedAfter(frames, () => frames.Deallocate(a, 8), a.ToString(System.Globalization.CultureInfo.InvariantCulture));
        frames.Deallocate(a, 3);
        Assert.Equal(1ul, frames.AllocatedFrames);
    }

    [Fact]
    public void Validate_CorruptedCount_ThrowsHeapCorruption()
    {
        var frames = new FrameAllocator();
        frames.AddFrames(0, 64);
        frames.Allocate(4);
        frames.Validate();
        typeof(FrameAllocator).GetField("_allocatedFrames", System.Reflection.BindingFlags.NonPublic | System.Reflection.BindingFlags.Instance)!
            .SetValue(frames, 5UL);
        var error = Assert.Throws<HeapCorruptionException>(frames.Validate);
        Assert.StartsWith(HeapCorruptionException.Prefix, error.Message, StringComparison.Ordinal);
        Assert.Contains("4 frames", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Validate_UnmergedFreeBuddies_ThrowsHeapCorruption()
    {
        var frames = new FrameAllocator();
        frames.AddFrames(0, 2);
        frames.Allocate(1);
        frames.Validate();
        var blocks = (Dictionary<ulong, ushort>)typeof(FrameAllocator)
            .GetField("_blocks", System.Reflection.BindingFlags.NonPublic | System.Reflection.BindingFlags.Instance)!.GetValue(frames)!;
        blocks[0] = blocks[1]; // frame 0 looks free of order 0 beside its free buddy at 1
        var error = Assert.Throws<HeapCorruptionException>(frames.Validate);
        Assert.StartsWith(HeapCorruptionException.Prefix, error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void AllocateAndDeallocate_SteadyState_NoGcAllocations()
    {
        var frames = new FrameAllocator();
        frames.AddFrames(0, 1 << 16);
        var live = new ulong[512];
        var counts = new ulong[512];

        void Churn()
        {
            var rng = new SplitMix64(0xA110C);
            int count = 0;
            for (int op = 0; op < 20_000; op++)
            {
                if (count == 0 || (count < live.Length && rng.Next(2) == 0))
                {
                    ulong frameCount = 1 + rng.Next(64);
                    live[count] = frames.Allocate(frameCount)!.Value;
                    counts[count++] = frameCount;
                }
                else
                {
                    int index = (int)rng.Next((ulong)count);
                    frames.Deallocate(live[index], counts[index]);
                    live[index] = live[--count];
                    counts[index] = counts[count];
                }
            }

            while (count > 0)
            {
                count--;
                frames.Deallocate(live[count], counts[count]);
            }
        }

        Churn();
        Churn(); // the map, the heaps and the sweep list have grown to the working set
        long before = GC.GetAllocatedBytesForCurrentThread();
        Churn();
        Assert.Equal(0, GC.GetAllocatedBytesForCurrentThread() - before);
        frames.Validate();
    }

    // ---- model-based random run ----

    /// <summary>
    /// One million random operations against a bitmap model of used (or unmanaged) frames, over ranges that touch, start at
    /// frame 0, and have odd ends, with ten orders so that the top order is reached: every block is managed, free in the
    /// model and aligned to its size; an allocation fails exactly when no aligned free run of its block size exists; misuse
    /// probes throw and change nothing; Validate every 1 000 operations.
    /// </summary>
    [Fact]
    public void RandomOperations_OneMillion_MatchModelAndValidate()
    {
        const int orders = 10;
        const int modelFrames = 4096;
        var frames = new FrameAllocator(orders);
        var used = new UnitBitmap(modelFrames);
        used.Mark(0, modelFrames, true);
        foreach ((ulong start, ulong end) in new (ulong, ulong)[] { (700, 1000), (0, 700), (1500, 2053), (3000, 3001), (3001, 4095) })
        {
            frames.AddFrames(start, end);
            used.Mark((int)start, (int)(end - start), false);
        }

        var live = new Dictionary<ulong, (ulong Count, ulong Block)>();
        var liveStarts = new List<ulong>();
        ulong allocatedModel = 0;
        var rng = new SplitMix64(0xF4A3E5);
        int failures = 0;
        for (int op = 1; op <= 1_000_000; op++)
        {
            ulong roll = rng.Next(100);
            if (live.Count == 0 || roll < 50)
            {
                int e = (int)rng.Next(rng.Next(50) == 0 ? 11UL : 6UL);
                ulong count = (1UL << e) + rng.Next(1UL << e) - 1;
                bool aligned = rng.Next(4) == 0;
                ulong align = aligned ? 1UL << (int)rng.Next(8) : 1;
                ulong block = Math.Max(BitOperations.RoundUpToPowerOf2(Math.Max(count, 1)), align);
                ulong? start = aligned ? frames.AllocateAligned(count, align) : frames.Allocate(count);
                if (start is ulong first)
                {
                    if (block > (1UL << (orders - 1)) || first % block != 0 || first + block > modelFrames || !used.IsFree((int)first, (int)block))
                    {
                        Assert.Fail($"op {op}: block {first}+{block} is too large, misaligned, unmanaged, or overlaps a live block");
                    }

                    used.Mark((int)first, (int)block, true);
                    live.Add(first, (count, block));
                    liveStarts.Add(first);
                    allocatedModel += block;
                }
                else
                {
                    failures++;
                    if (block <= (1UL << (orders - 1)) && used.HasAlignedFreeRun((int)block))
                    {
                        Assert.Fail($"op {op}: allocation of {block} frames failed though an aligned free run exists");
                    }
                }
            }
            else if (roll < 98)
            {
                int index = (int)rng.Next((ulong)liveStarts.Count);
                ulong first = liveStarts[index];
                liveStarts[index] = liveStarts[^1];
                liveStarts.RemoveAt(liveStarts.Count - 1);
                (ulong count, ulong block) = live[first];
                live.Remove(first);
                frames.Deallocate(first, roll % 2 == 0 ? count : block);
                used.Mark((int)first, (int)block, false);
                allocatedModel -= block;
            }
            else
            {
                ulong probe = rng.Next(modelFrames + 64);
                if (!live.ContainsKey(probe))
                {
                    Assert.Throws<ArgumentException>(() => frames.Deallocate(probe, 1));
                }
            }

            if (op % 1000 == 0)
            {
                frames.Validate();
                Assert.Equal(allocatedModel, frames.AllocatedFrames);
            }
        }

        Assert.InRange(failures, 1, 400_000);
        foreach (ulong first in liveStarts)
        {
            frames.Deallocate(first, live[first].Block);
        }

        frames.Validate();
        Assert.Equal(0ul, frames.AllocatedFrames);
        Assert.Equal(frames.TotalFrames, frames.FreeFrames);
        Assert.Equal(0ul, frames.Allocate(512)); // [0, 1000) merged back: 0..512 is one top-order block
    }
}
