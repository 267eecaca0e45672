namespace BuddySystem.Tests.Engines;

/// <summary>Examples and a randomized run against a list model for <see cref="SlabHeap"/>.</summary>
public unsafe class SlabHeapTests
{
    [Fact]
    public void ClassSizes_AreSpacedAtMostAnEighthApartAbove128()
    {
        IReadOnlyList<int> sizes = SlabHeap.ClassSizes;
        Assert.Equal(16, sizes[0]);
        Assert.Equal(8192, sizes[^1]);
        for (int i = 1; i < sizes.Count; i++)
        {
            Assert.True(sizes[i] > sizes[i - 1]);
            Assert.True(sizes[i - 1] < 128 || (sizes[i] - sizes[i - 1]) * 8 <= sizes[i - 1], $"{sizes[i - 1]} -> {sizes[i]}");
        }
    }

    [Theory]
    [InlineData(100, 8, 112, 16)]
    [InlineData(129, 8, 144, 16)]
    [InlineData(311, 32, 320, 64)] // a 320-byte object is 64-aligned, not 320-aligned
    [InlineData(64, 256, 256, 256)]
    [InlineData(0, 1, 16, 16)]
    [InlineData(9000, 8, 9216, 16384)]
    [InlineData(65537, 8, 66560, 131072)]
    public void BlockSizeFor_MapsToClassOrLargeLength(int size, int align, int expected, int alignment)
    {
        var layout = new Layout((nuint)size, (nuint)align);
        Assert.Equal((ulong)expected, SlabHeap.BlockSizeFor(layout));
        Assert.Equal((ulong)alignment, SlabHeap.BlockAlignmentFor(layout));
    }

    [Fact]
    public void LargeBlock_GivesItsTailBack()
    {
        using var heap = SlabHeap.Create(1 << 20);
        void* block = heap.Allocate(new Layout(65 << 10, 8));
        Assert.True(block != null);
        HeapStats stats = heap.Stats;
        Assert.Equal(65ul << 10, stats.AllocatedBytes);
        // A buddy heap would hold 128 KiB; the slab heap keeps 65 KiB and the rest can serve another 512 KiB and more.
        Assert.True(stats.LargestFreeBlock >= 512 << 10);
        void* second = heap.Allocate(new Layout(60 << 10, 8));
        Assert.True(second != null);
        heap.Validate();
        heap.Deallocate(block, new Layout(65 << 10, 8));
        heap.Deallocate(second, new Layout(60 << 10, 8));
        heap.Validate();
        Assert.Equal(0ul, heap.Stats.AllocatedBytes);
        Assert.Equal(1ul << 20, heap.Stats.LargestFreeBlock);
    }

    [Fact]
    public void LargeBlock_ShrinksInPlace_AndGivesItsTailBack()
    {
        using var heap = SlabHeap.Create(1 << 20);
        var layout = new Layout(60 << 10, 8);
        byte* block = (byte*)heap.Allocate(layout);
        new Span<byte>(block, 60 << 10).Fill(0x5A);
        Assert.True(heap.Reallocate(block, layout, 20 << 10) == block);
        heap.Validate();
        Assert.Equal(20ul << 10, heap.Stats.AllocatedBytes);
        Assert.True(new Span<byte>(block, 20 << 10).IndexOfAnyExcept((byte)0x5A) < 0);

        // The tail went back: the 32 KiB after the kept 20 KiB (rounded up to the block's half) serve another request.
        void* next = heap.Allocate(new Layout(32 << 10, 8));
        Assert.True((byte*)next == block + (32 << 10));
        heap.Deallocate(next, new Layout(32 << 10, 8));
        heap.Deallocate(block, new Layout(20 << 10, 8));
        heap.Validate();
        Assert.Equal(1ul << 20, heap.Stats.LargestFreeBlock);
    }

    [Fact]
    public void LargeBlock_GrowsInPlace_IntoFreeBuddiesAfterIt_PastItsFirstBlock()
    {
        using var heap = SlabHeap.Create(1 << 20);
        var layout = new Layout(9 << 10, 8);
        byte* block = (byte*)heap.Allocate(layout);
        new Span<byte>(block, 9 << 10).Fill(0xA5);
        foreach (int kib in new[] { 14, 16, 40, 100, 300 })
        {
            var grown = new Layout((nuint)kib << 10, 8);
            Assert.True(heap.Reallocate(block, layout, grown.Size) == block, $"{kib} KiB moved");
            heap.Validate();
            Assert.Equal((ulong)kib << 10, heap.Stats.AllocatedBytes);
            Assert.Equal(1, heap.Stats.LiveBlocks);
            layout = grown;
        }

        Assert.True(new Span<byte>(block, 9 << 10).IndexOfAnyExcept((byte)0xA5) < 0);
        heap.Deallocate(block, layout);
        heap.Validate();
        Assert.Equal(1ul << 20, heap.Stats.LargestFreeBlock);
    }

    [Fact]
    public void LargeBlock_ResizedInPlace_IsOneBlockOfItsNewLength_InTheSnapshot()
    {
        using var heap = SlabHeap.Create(1 << 20);
        var layout = new Layout(20 << 10, 8);
        byte* block = (byte*)heap.Allocate(layout);
        Assert.True(heap.Reallocate(block, layout, 90 << 10) == block);
        var snapshot = Diagnostics.HeapSnapshot.Of(heap);
        ulong offset = (ulong)block - snapshot.BaseAddress;
        Assert.Equal(new Diagnostics.HeapBlock(offset, 13, 90ul << 10, Diagnostics.BlockState.Allocated), Assert.Single(snapshot.Blocks, b => b.State == Diagnostics.BlockState.Allocated));
        Assert.Equal(1ul << 20, snapshot.Blocks.Aggregate(0ul, (sum, b) => sum + b.Size)); // the blocks tile the heap
        heap.Deallocate(block, new Layout(90 << 10, 8));
    }

    [Fact]
    public void LargeBlock_WithALiveBlockAfterIt_MovesToGrow_AndStaysValid()
    {
        using var heap = SlabHeap.Create(1 << 20);
        var layout = new Layout(40 << 10, 8);
        byte* block = (byte*)heap.Allocate(layout);
        new Span<byte>(block, 40 << 10).Fill(0x3C);
        // The 64 KiB block's freed tail is 8 KiB at 40 KiB and 16 KiB at 48 KiB: the only 16 KiB block free.
        void* after = heap.Allocate(new Layout(16 << 10, 8));
        Assert.True((byte*)after == block + (48 << 10));
        byte* moved = (byte*)heap.Reallocate(block, layout, 50 << 10);
        Assert.True(moved != null && moved != block);
        Assert.True(new Span<byte>(moved, 40 << 10).IndexOfAnyExcept((byte)0x3C) < 0);
        heap.Validate();
        Assert.Equal((50ul << 10) + (16ul << 10), heap.Stats.AllocatedBytes);
        heap.Deallocate(moved, new Layout(50 << 10, 8));
        heap.Deallocate(after, new Layout(16 << 10, 8));
        heap.Validate();
        Assert.Equal(1ul << 20, heap.Stats.LargestFreeBlock);
    }

    [Fact]
    public void LargeBlock_GrowingPastAnAlignmentItLacks_Moves()
    {
        using var heap = SlabHeap.Create(1 << 20);
        void* first = heap.Allocate(new Layout(64 << 10, 8));
        var layout = new Layout(20 << 10, 8);
        byte* block = (byte*)heap.Allocate(layout); // at 64 KiB: aligned to 64 KiB, not to the 128 KiB a 70 KiB block needs
        Assert.True(block == (byte*)first + (64 << 10));
        byte* moved = (byte*)heap.Reallocate(block, layout, 70 << 10);
        Assert.True(moved != null && moved != block);
        Assert.Equal(0ul, (ulong)moved % (128 << 10));
        heap.Validate();
        heap.Deallocate(moved, new Layout(70 << 10, 8));
        heap.Deallocate(first, new Layout(64 << 10, 8));
        heap.Validate();
        Assert.Equal(1ul << 20, heap.Stats.LargestFreeBlock);
    }

    [Fact]
    public void LargeBlock_FreedWithAnotherLength_ThrowsAndChangesNothing()
    {
        using var heap = SlabHeap.Create(1 << 20);
        void* block = heap.Allocate(new Layout(20000, 8));
        var error = Assert.Throws<ArgumentException>(() => heap.Deallocate(block, new Layout(30000, 8)));
        Assert.Equal("layout", error.ParamName);
        Assert.Throws<ArgumentException>(() => heap.Deallocate((byte*)block + 16384, new Layout(3616, 8)));
        heap.Validate();
        heap.Deallocate(block, new Layout(20000, 8));
        heap.Validate();
    }

    [Fact]
    public void EmptySlabs_GoBackToTheBuddyEngine_KeepingOnePerClass()
    {
        using var heap = SlabHeap.Create(1 << 22);
        var layout = new Layout(48, 8);
        var blocks = new List<nint>();
        for (int i = 0; i < 5000; i++)
        {
            blocks.Add((nint)heap.Allocate(layout));
        }

        Assert.True(heap.SlabCount > 2);
        foreach (nint block in blocks)
        {
            heap.Deallocate((void*)block, layout);
        }

        Assert.Equal(1, heap.SlabCount);
        heap.Trim();
        Assert.Equal(0, heap.SlabCount);
        heap.Validate();
        Assert.Equal(1ul << 22, heap.Stats.LargestFreeBlock);
    }

    [Fact]
    public void OneThreadAtATime_AnyThread_SharesTheSameSlabs()
    {
        // The single owner is not bound to a thread: objects made on an exited thread are freed here, its slabs reused,
        // nothing is abandoned.
        using var heap = SlabHeap.Create(1 << 20);
        var layout = new Layout(48, 8);
        var blocks = new List<nint>();
        OtherThread.Run(() =>
        {
            for (int i = 0; i < 100; i++)
            {
                blocks.Add((nint)heap.Allocate(layout));
            }
        });
        Assert.Equal(2, heap.SlabCount); // 100 objects of 48 bytes: a first slab of 4 KiB and a second one
        foreach (nint block in blocks)
        {
            heap.Deallocate((void*)block, layout);
        }

        heap.Validate();
        Assert.Equal(1, heap.SlabCount); // the class keeps one empty slab
        void* again = heap.Allocate(layout);
        Assert.Contains((nint)again, blocks);
        heap.Deallocate(again, layout);
        Assert.Equal(0, heap.Stats.LiveBlocks);
    }

    [Fact]
    public void AfterDispose_EveryCallThrows()
    {
        var heap = SlabHeap.Create(1 << 20);
        void* small = heap.Allocate(new Layout(48, 8));
        void* large = heap.Allocate(new Layout(20000, 8));
        heap.Dispose();
        Assert.Throws<ObjectDisposedException>(() => heap.Allocate(new Layout(48, 8)));
        Assert.Throws<ObjectDisposedException>(() => heap.Allocate(new Layout(20000, 8)));
        Assert.Throws<ObjectDisposedException>(() => heap.Deallocate(small, new Layout(48, 8)));
        Assert.Throws<ObjectDisposedException>(() => heap.Deallocate(large, new Layout(20000, 8)));
        Assert.Throws<ObjectDisposedException>(() => heap.Reallocate(small, new Layout(48, 8), 64));
        Assert.Throws<ObjectDisposedException>(() => heap.Stats);
        Assert.Throws<ObjectDisposedException>(() => heap.Validate());
        heap.Dispose();
    }

    [Fact]
    public void RandomOperations_AgainstListModel_AgreeAndValidate()
    {
        using var heap = SlabHeap.Create(8 << 20);
        var rng = new Random(1234);
        var live = new List<(nint Address, Layout Layout, byte Fill)>();
        ulong allocated = 0;
        for (int op = 0; op < 20000; op++)
        {
            int roll = rng.Next(100);
            if (roll < 50 || live.Count == 0)
            {
                var layout = new Layout((nuint)(rng.Next(4) == 0 ? rng.Next(1, 70000) : rng.Next(0, 600)), (nuint)1 << rng.Next(0, 7));
                byte* block = (byte*)heap.Allocate(layout);
                if (block == null)
                {
                    continue;
                }

                Assert.Equal(0ul, (ulong)block % SlabHeap.BlockAlignmentFor(layout));
                byte fill = (byte)rng.Next(256);
                new Span<byte>(block, (int)layout.Size).Fill(fill);
                live.Add(((nint)block, layout, fill));
                allocated += SlabHeap.BlockSizeFor(layout);
            }
            else if (roll < 85)
            {
                int index = rng.Next(live.Count);
                var (address, layout, fill) = live[index];
                Assert.True(new Span<byte>((void*)address, (int)layout.Size).IndexOfAnyExcept(fill) < 0, "a live block was overwritten");
                heap.Deallocate((void*)address, layout);
                live[index] = live[^1];
                live.RemoveAt(live.Count - 1);
                allocated -= SlabHeap.BlockSizeFor(layout);
            }
            else
            {
                int index = rng.Next(live.Count);
                var (address, layout, fill) = live[index];
                nuint newSize = (nuint)rng.Next(0, 20000);
                byte* moved = (byte*)heap.Reallocate((void*)address, layout, newSize);
                if (moved == null)
                {
                    continue;
                }

                var newLayout = new Layout(newSize, layout.Align);
                Assert.True(new Span<byte>(moved, (int)Math.Min(layout.Size, newSize)).IndexOfAnyExcept(fill) < 0, "reallocation lost bytes");
                new Span<byte>(moved, (int)newSize).Fill(fill);
                live[index] = ((nint)moved, newLayout, fill);
                allocated = allocated - SlabHeap.BlockSizeFor(layout) + SlabHeap.BlockSizeFor(newLayout);
            }

            if (op % 1000 == 0)
            {
                heap.Validate();
                Assert.Equal(allocated, heap.Stats.AllocatedBytes);
                Assert.Equal(live.Count, heap.Stats.LiveBlocks);
            }
        }

        foreach (var (address, layout, _) in live)
        {
            heap.Deallocate((void*)address, layout);
        }

        heap.Validate();
        Assert.Equal(0ul, heap.Stats.AllocatedBytes);
    }

    [Fact]
    public void Snapshot_DrawsSlabsAsObjects_AndAgreesWithStats()
    {
        using var heap = SlabHeap.Create(1 << 20);
        var small = new Layout(100, 8);
        void* a = heap.Allocate(small);
        void* b = heap.Allocate(small);
        void* large = heap.Allocate(new Layout(20000, 8));
        heap.Deallocate(a, small);
        var snapshot = BuddySystem.Diagnostics.HeapSnapshot.Of(heap);
        HeapStats stats = heap.Stats;
        Assert.Equal(stats.TotalBytes, snapshot.TotalBytes);
        Assert.Equal(stats.AllocatedBytes, snapshot.AllocatedBytes);
        Assert.Equal(stats.CachedBytes, snapshot.CachedBytes);
        Assert.Equal(stats.FreeBytes, snapshot.FreeBytes);
        Assert.Equal(stats.LiveBlocks, snapshot.LiveBlocks);
        Assert.Equal(stats.LargestFreeBlock, snapshot.LargestFreeBlock);

        // One slab of 112-byte objects: the freed one and the live one, each a block of the slab.
        var slab = Assert.Single(snapshot.Slabs);
        Assert.Equal(112u, slab.ObjectSize);
        Assert.Equal(1, slab.LiveObjects);
        ulong offsetB = (ulong)b - snapshot.BaseAddress;
        Assert.Contains(snapshot.Blocks, block => block.Offset == offsetB && block.Size == 112 && block.State == BuddySystem.Diagnostics.BlockState.Allocated);
        Assert.Contains(snapshot.Blocks, block => block.Offset == (ulong)a - snapshot.BaseAddress && block.State == BuddySystem.Diagnostics.BlockState.Cached);
        Assert.Contains(snapshot.Blocks, block => block.Offset == (ulong)large - snapshot.BaseAddress && block.Size == 20480 && block.State == BuddySystem.Diagnostics.BlockState.Allocated);
        heap.Deallocate(b, small);
        heap.Deallocate(large, new Layout(20000, 8));
    }
}
