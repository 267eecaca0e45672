namespace BuddySystem.Tests;

/// <summary>The engine's behaviour, run once with lazy caches and once eager (see the two derived classes).</summary>
public abstract unsafe class BuddyHeapTests
{
    /// <summary>The configuration under test.</summary>
    protected abstract BuddyHeapOptions Options { get; }

    private (BuddyHeap Heap, TestRegion Region) NewHeap(nuint size = 1 << 16)
    {
        var region = new TestRegion(size, size);
        var heap = new BuddyHeap(Options);
        heap.AddRegion(region.Pointer, size);
        return (heap, region);
    }

    [Fact]
    public void New_Empty_AllocateReturnsNull()
    {
        using var heap = new BuddyHeap(Options);
        Assert.True(heap.Allocate(new Layout(16, 8)) == null);
        Assert.Equal(0ul, heap.Stats.TotalBytes);
        Assert.Equal(1, heap.Stats.FailedAllocations);
    }

    [Fact]
    public void MinBlockSize_Is16()
    {
        Assert.Equal((nuint)16, BuddyHeap.MinBlockSize);
    }

    [Fact]
    public void Allocate_SmallRequest_GetsSixteenByteBlockAtRegionStart()
    {
        var (heap, region) = NewHeap();
        using (region)
        using (heap)
        {
            void* block = heap.Allocate(new Layout(5, 1));
            Assert.True(block == region.Pointer);
            HeapStats stats = heap.Stats;
            Assert.Equal(5ul, stats.UserBytes);
            Assert.Equal(16ul, stats.AllocatedBytes);
            Assert.Equal(1L << 16, (long)stats.TotalBytes);
            heap.Validate();
        }
    }

    [Theory]
    [InlineData(1, 1, 16)]
    [InlineData(17, 1, 32)]
    [InlineData(100, 8, 128)]
    [InlineData(8, 256, 256)]
    [InlineData(4096, 4096, 4096)]
    [InlineData(4097, 8, 8192)]
    public void Allocate_SizeAndAlign_BlockIsPowerOfTwoAlignedToItsSize(int size, int align, int expectedBlock)
    {
        var (heap, region) = NewHeap();
        using (region)
        using (heap)
        {
            heap.Allocate(new Layout(16, 1)); // push later blocks off the region start
            void* block = heap.Allocate(new Layout((nuint)size, (nuint)align));
            Assert.True(block != null);
            Assert.Equal(0ul, (ulong)block % (ulong)expectedBlock);
            Assert.Equal(16ul + (ulong)expectedBlock, heap.Stats.AllocatedBytes);
            heap.Validate();
        }
    }

    [Fact]
    public void Allocate_ZeroSize_ReturnsUniqueValidPointers()
    {
        var (heap, region) = NewHeap();
        using (region)
        using (heap)
        {
            void* a = heap.Allocate(new Layout(0, 1));
            void* b = heap.Allocate(new Layout(0, 1));
            Assert.True(a != null && b != null && a != b);
            heap.Deallocate(a, new Layout(0, 1));
            heap.Deallocate(b, new Layout(0, 1));
            Assert.Equal(0ul, heap.Stats.AllocatedBytes);
        }
    }

    [Fact]
    public void Allocate_LargerThanHeap_ReturnsNullAndCountsFailure()
    {
        var (heap, region) = NewHeap();
        using (region)
        using (heap)
        {
            Assert.True(heap.Allocate(new Layout((1 << 16) + 1, 1)) == null);
            Assert.True(heap.Allocate(new Layout(nuint.MaxValue / 2, 1)) == null);
            Assert.Equal(2, heap.Stats.FailedAllocations);
            Assert.True(heap.Allocate(new Layout(1 << 16, 1)) != null);
            heap.Validate();
        }
    }

    [Fact]
    public void Deallocate_AllBlocks_MergesBackToOneBlock()
    {
        var (heap, region) = NewHeap();
        using (region)
        using (heap)
        {
            var blocks = new List<nint>();
            for (int i = 0; i < 100; i++)
            {
                blocks.Add((nint)heap.Allocate(new Layout((nuint)(16 + (i * 7 % 200)), 8)));
            }

            for (int i = 0; i < blocks.Count; i++)
            {
                heap.Deallocate((void*)blocks[i], new Layout((nuint)(16 + (i * 7 % 200)), 8));
                heap.Validate();
            }

            heap.Trim();
            heap.Validate();
            HeapStats stats = heap.Stats;
            Assert.Equal(0ul, stats.CachedBytes);
            Assert.Equal(1ul << 16, stats.LargestFreeBlock);
            Assert.Equal(0ul, stats.AllocatedBytes);
            Assert.Equal(0ul, stats.UserBytes);
            Assert.Equal(1, stats.FreeBlocksByOrder[^1]);
        }
    }

    [Fact]
    public void Stats_AfterSplit_FreeBlocksByOrderIsBuddyinfoRow()
    {
        var (heap, region) = NewHeap(1024);
        using (region)
        using (heap)
        {
            heap.Allocate(new Layout(16, 1));
            heap.Trim(); // a lazy heap cut a batch of 16-byte blocks; trimmed, it is where the eager algorithm stands
            // 1024 = 16 << 6; one 16-byte block out splits one block of each order 0..5.
            Assert.Equal(new long[] { 1, 1, 1, 1, 1, 1, 0 }, heap.Stats.FreeBlocksByOrder);
            Assert.Equal(512ul, heap.Stats.LargestFreeBlock);
            Assert.Equal(1024ul / 16, heap.Stats.MetadataBytes);
        }
    }

    [Fact]
    public void AddRegion_UnalignedStart_UsesEdgesAsSmallerBlocks()
    {
        using var region = new TestRegion(4096, 4096);
        using var heap = new BuddyHeap(Options);
        heap.AddRegion(region.Pointer + 3, 4096 - 3 - 5);
        HeapStats stats = heap.Stats;
        // Granules from +16 to +4080: 4064 usable bytes, cut into aligned blocks 16, 32, ..., 512 (up to +1024),
        // 1024 at +1024, 1024 at +2048, then 512, 256, ..., 16 down to the end.
        Assert.Equal(4064ul, stats.TotalBytes);
        Assert.Equal(1024ul, stats.LargestFreeBlock);
        Assert.Equal(new long[] { 2, 2, 2, 2, 2, 2, 2, 0 }, stats.FreeBlocksByOrder);
        heap.Validate();
        void* big = heap.Allocate(new Layout(1024, 1));
        Assert.True(big == region.Pointer + 1024 || big == region.Pointer + 2048);
        Assert.True(heap.Allocate(new Layout(2048, 1)) == null);
    }

    [Fact]
    public void AddRegion_SixteenBytes_ServesSixteenByteBlock()
    {
        using var region = new TestRegion(16, 16);
        using var heap = new BuddyHeap(Options);
        heap.AddRegion(region.Pointer, 16);
        Assert.Equal(16ul, heap.Stats.TotalBytes);
        Assert.True(heap.Allocate(new Layout(16, 16)) == region.Pointer);
        Assert.True(heap.Allocate(new Layout(1, 1)) == null);
    }

    [Fact]
    public void AddRegion_SeveralDisjoint_ServesFromEach()
    {
        using var first = new TestRegion(256, 256);
        using var second = new TestRegion(256, 256);
        using var heap = new BuddyHeap(Options);
        heap.AddRegion(first.Pointer, 256);
        heap.AddRegion(second.Pointer, 256);
        void* a = heap.Allocate(new Layout(256, 1));
        void* b = heap.Allocate(new Layout(256, 1));
        Assert.True(a != null && b != null);
        Assert.True((a == first.Pointer && b == second.Pointer) || (a == second.Pointer && b == first.Pointer));
        heap.Deallocate(a, new Layout(256, 1));
        heap.Deallocate(b, new Layout(256, 1));
        heap.Validate();
        Assert.Equal(512ul, heap.Stats.FreeBytes);
    }

    [Fact]
    public void AddRegion_Overlapping_ThrowsAndChangesNothing()
    {
        using var region = new TestRegion(1024, 1024);
        using var heap = new BuddyHeap(Options);
        heap.AddRegion(region.Pointer, 512);
        var error = Assert.Throws<ArgumentException>(() => heap.AddRegion(region.Pointer + 256, 512));
        Assert.Contains("overlaps", error.Message, StringComparison.Ordinal);
        Assert.Equal(512ul, heap.Stats.TotalBytes);
        heap.Validate();
        heap.AddRegion(region.Pointer + 512, 512);
        Assert.Equal(1024ul, heap.Stats.TotalBytes);
    }

    [Fact]
    public void AddRegion_NullOrTooSmall_Throws()
    {
        using var region = new TestRegion(64, 64);
        using var heap = new BuddyHeap(Options);
        Assert.Throws<ArgumentNullException>(() => heap.AddRegion(null, 64));
        Assert.Throws<ArgumentException>(() => heap.AddRegion(region.Pointer + 1, 20));
        Assert.Equal(0ul, heap.Stats.TotalBytes);
    }

    [Fact]
    public void Reallocate_SameBlockSize_StaysInPlace()
    {
        var (heap, region) = NewHeap();
        using (region)
        using (heap)
        {
            byte* block = (byte*)heap.Allocate(new Layout(20, 8));
            block[0] = 42;
            byte* same = (byte*)heap.Reallocate(block, new Layout(20, 8), 30);
            Assert.True(same == block);
            Assert.Equal(30ul, heap.Stats.UserBytes);
            byte* moved = (byte*)heap.Reallocate(same, new Layout(30, 8), 100);
            Assert.True(moved != null);
            Assert.Equal(42, moved[0]);
            Assert.Equal(128ul, heap.Stats.AllocatedBytes);
            Assert.Equal(100ul, heap.Stats.UserBytes);
            heap.Validate();
        }
    }

    [Fact]
    public void Reallocate_GrowWhileBuddiesAboveAreFree_StaysInPlaceAndAbsorbsThem()
    {
        var (heap, region) = NewHeap();
        using (region)
        using (heap)
        {
            byte* block = (byte*)heap.Allocate(new Layout(8192, 8));
            Assert.True(block == region.Pointer); // the lower half of every split
            block[8191] = 9;
            Assert.True(heap.Reallocate(block, new Layout(8192, 8), 16384) == block);
            Assert.True(heap.Reallocate(block, new Layout(16384, 8), 40000) == block);
            Assert.Equal(9, block[8191]);
            Assert.Equal(65536ul, heap.Stats.AllocatedBytes);
            Assert.Equal(40000ul, heap.Stats.UserBytes);
            Assert.Equal(0ul, heap.Stats.FreeBytes);
            heap.Validate();
        }
    }

    [Fact]
    public void Reallocate_Shrink_StaysInPlaceAndGivesTheTailBack()
    {
        var (heap, region) = NewHeap();
        using (region)
        using (heap)
        {
            byte* block = (byte*)heap.Allocate(new Layout(65536, 8));
            block[100] = 5;
            Assert.True(heap.Reallocate(block, new Layout(65536, 8), 8000) == block);
            Assert.Equal(5, block[100]);
            Assert.Equal(8192ul, heap.Stats.AllocatedBytes);
            Assert.Equal(32768ul, heap.Stats.LargestFreeBlock);
            byte* upper = (byte*)heap.Allocate(new Layout(32768, 8));
            Assert.True(upper == block + 32768);
            heap.Validate();
            heap.Deallocate(upper, new Layout(32768, 8));
            heap.Deallocate(block, new Layout(8000, 8));
            heap.Trim();
            Assert.Equal(65536ul, heap.Stats.LargestFreeBlock);
            heap.Validate();
        }
    }

    [Fact]
    public void Reallocate_ShrinkWhenAFreeBlockOfTheNewSizeWaits_MovesThereSoTheLargeBlockMergesWhole()
    {
        // Shrinking in place here would leave an 8 KiB block inside the 64 KiB one and the waiting 8 KiB hole unused;
        // in W6 that cost 7 points of efficiency (docs/benchmarks.md).
        var (heap, region) = NewHeap(1 << 17);
        using (region)
        using (heap)
        {
            byte* small = (byte*)heap.Allocate(new Layout(8192, 8));
            byte* keep = (byte*)heap.Allocate(new Layout(8192, 8));
            byte* large = (byte*)heap.Allocate(new Layout(65536, 8));
            heap.Deallocate(small, new Layout(8192, 8)); // the hole: a free 8 KiB block below the large one
            large[100] = 9;
            byte* moved = (byte*)heap.Reallocate(large, new Layout(65536, 8), 8000);
            Assert.True(moved == small);
            Assert.Equal(9, moved[100]);
            Assert.Equal(16384ul, heap.Stats.AllocatedBytes);
            Assert.True(heap.Allocate(new Layout(65536, 8)) == large); // the large block merged back whole
            heap.Validate();
        }
    }

    [Fact]
    public void Reallocate_GrowWhileTheBuddyAboveIsLive_MovesAndKeepsBytes()
    {
        var (heap, region) = NewHeap();
        using (region)
        using (heap)
        {
            byte* block = (byte*)heap.Allocate(new Layout(8192, 8));
            byte* neighbour = (byte*)heap.Allocate(new Layout(8192, 8));
            Assert.True(neighbour == block + 8192);
            block[8000] = 3;
            byte* moved = (byte*)heap.Reallocate(block, new Layout(8192, 8), 16384);
            Assert.True(moved != null && moved != block);
            Assert.Equal(3, moved[8000]);
            Assert.Equal(16384ul + 8192ul, heap.Stats.AllocatedBytes);
            heap.Validate();
        }
    }

    [Fact]
    public void Reallocate_NoRoom_ReturnsNullAndKeepsOldBlock()
    {
        var (heap, region) = NewHeap(256);
        using (region)
        using (heap)
        {
            byte* block = (byte*)heap.Allocate(new Layout(100, 8));
            block[99] = 7;
            Assert.True(heap.Allocate(new Layout(128, 8)) != null); // the upper half: nothing to grow into or move to
            Assert.True(heap.Reallocate(block, new Layout(100, 8), 200) == null);
            Assert.Equal(7, block[99]);
            heap.Deallocate(block, new Layout(100, 8));
            heap.Validate();
        }
    }

    [Fact]
    public void Create_OwnsMemory_DisposeFreesAndLaterCallsThrow()
    {
        var heap = BuddyHeap.Create(1 << 20, Options);
        Assert.Equal(1ul << 20, heap.Stats.LargestFreeBlock);
        void* block = heap.Allocate(new Layout(64, 64));
        Assert.True(block != null);
        heap.Dispose();
        heap.Dispose();
        Assert.Throws<ObjectDisposedException>(() => heap.Allocate(new Layout(64, 64)));
        Assert.Throws<ObjectDisposedException>(() => heap.Deallocate(block, new Layout(64, 64)));
        Assert.Throws<ObjectDisposedException>(() => heap.Validate());
    }

    [Fact]
    public void Create_NonPowerOfTwoSize_ManagesAllBytes()
    {
        using var heap = BuddyHeap.Create(3 << 20, Options);
        Assert.Equal(3ul << 20, heap.Stats.TotalBytes);
        Assert.Equal(2ul << 20, heap.Stats.LargestFreeBlock);
        heap.Validate();
    }

    [Fact]
    public void Stats_Metadata_IsOneSixteenthOfManagedBytes()
    {
        using var heap = BuddyHeap.Create(8 << 20, Options);
        Assert.Equal((8ul << 20) / 16, heap.Stats.MetadataBytes);
    }

    [Fact]
    public void AddRegion_StartInLast15BytesOfAddressSpace_ThrowsArgumentAndChangesNothing()
    {
        using var heap = new BuddyHeap();
        Assert.Throws<ArgumentException>(() => heap.AddRegion((void*)0xFFFFFFFFFFFFFFF1, 0));
        Assert.Throws<ArgumentException>(() => heap.AddRegion((void*)0xFFFFFFFFFFFFFFF1, 14));
        Assert.Equal(0ul, heap.Stats.TotalBytes);
        heap.Validate();
    }

    [Fact]
    public void AddRegion_LargerThanOneSideTable_ThrowsArgumentWithoutTouchingMemory()
    {
        using var heap = new BuddyHeap();
        // Nothing is read or written at the address: the size check comes before any metadata is built.
        var error = Assert.Throws<ArgumentException>(() => heap.AddRegion((void*)0x10000000000, (nuint)1 << 36));
        Assert.Contains("add it in pieces", error.Message, StringComparison.Ordinal);
        Assert.Equal(0ul, heap.Stats.TotalBytes);
    }
}
