namespace BuddySystem.Tests;

public unsafe class LockedHeapTests
{
    [Fact]
    public void Allocate_Exhausted_RescueAddsRegionAndRetries()
    {
        using var extra = new TestRegion(4096, 4096);
        int rescues = 0;
        using var heap = LockedHeap.Create(256, (engine, layout) =>
        {
            rescues++;
            Assert.Equal((nuint)1024, layout.Size);
            engine.AddRegion(extra.Pointer, extra.Size);
        });
        void* block = heap.Allocate(new Layout(1024, 8));
        Assert.True(block == extra.Pointer);
        Assert.Equal(1, rescues);
        Assert.Equal(4096ul + 256, heap.Stats.TotalBytes);
        heap.Validate();
    }

    [Fact]
    public void Allocate_RescueAddsNothing_ReturnsNullOnce()
    {
        int rescues = 0;
        using var heap = LockedHeap.Create(256, (_, _) => rescues++);
        Assert.True(heap.Allocate(new Layout(1024, 8)) == null);
        Assert.Equal(1, rescues);
    }

    [Fact]
    public void PassThroughs_AddRegionReallocateDeallocate_Work()
    {
        using var region = new TestRegion(1024, 1024);
        using var heap = new LockedHeap(new BuddyHeap());
        heap.AddRegion(region.Pointer, region.Size);
        byte* block = (byte*)heap.Allocate(new Layout(10, 1));
        block[0] = 9;
        block = (byte*)heap.Reallocate(block, new Layout(10, 1), 300);
        Assert.Equal(9, block[0]);
        heap.Deallocate(block, new Layout(300, 1));
        heap.Validate();
        heap.Trim();
        heap.Validate();
        Assert.Equal(1024ul, heap.Stats.LargestFreeBlock);
        Assert.Equal(1, heap.WithHeap(h => h.Stats.FreeBlocksByOrder[^1]));
    }

    [Fact]
    public void Deallocate_Misuse_ThrowsThroughTheLock()
    {
        using var heap = LockedHeap.Create(1024);
        void* block = heap.Allocate(new Layout(16, 8));
        heap.Deallocate(block, new Layout(16, 8));
        Assert.Throws<InvalidOperationException>(() => heap.Deallocate(block, new Layout(16, 8)));
        heap.Validate();
    }

    [Fact]
    public void Allocate_FourThreads_NoOverlapAndAllFreed()
    {
        using var heap = LockedHeap.Create(1 << 22);
        Parallel.For(0, 4, thread =>
        {
            var blocks = new List<nint>();
            for (int i = 0; i < 20_000; i++)
            {
                if (blocks.Count > 0 && (i % 3 == 0))
                {
                    byte* b = (byte*)blocks[^1];
                    blocks.RemoveAt(blocks.Count - 1);
                    Assert.Equal((byte)thread, b[0]);
                    Assert.Equal((byte)thread, b[31]);
                    heap.Deallocate(b, new Layout(32, 8));
                }
                else
                {
                    byte* b = (byte*)heap.Allocate(new Layout(32, 8));
                    Assert.True(b != null);
                    new Span<byte>(b, 32).Fill((byte)thread);
                    blocks.Add((nint)b);
                }
            }

            foreach (nint b in blocks)
            {
                heap.Deallocate((void*)b, new Layout(32, 8));
            }
        });
        heap.Validate();
        heap.Trim();
        Assert.Equal(0ul, heap.Stats.AllocatedBytes);
        Assert.Equal(1ul << 22, heap.Stats.LargestFreeBlock);
    }
}
