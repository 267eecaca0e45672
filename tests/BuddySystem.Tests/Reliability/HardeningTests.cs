namespace BuddySystem.Tests.Reliability;

/// <summary>
/// Hardened mode in process, with a corruption handler that records instead of ending the process: write-after-free and
/// overflow are detected with the prefix and the address, clean use raises nothing (merges, caches and region adds keep
/// the poison invariant), leaks are reported with their stacks, and the checks can be turned off one by one.
/// </summary>
public unsafe class HardeningTests
{
    private static (BuddyHeap Heap, List<string> Corruptions, List<string> Leaks) NewHeap(bool lazy = true, bool stacks = false, bool poison = true, bool canary = true)
    {
        var corruptions = new List<string>();
        var leaks = new List<string>();
        var hardening = new HeapHardeningOptions
        {
            CorruptionHandler = corruptions.Add,
            LeakHandler = leaks.Add,
            CaptureAllocationStacks = stacks,
            CheckWriteAfterFree = poison,
            CheckOverflow = canary,
        };
        var options = (lazy ? BuddyHeapOptions.Default : BuddyHeapOptions.Eager) with { Hardening = hardening };
        return (BuddyHeap.Create(1 << 16, options), corruptions, leaks);
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void Allocate_AfterWriteAfterFree_ReportsCorruptionNamingBlock(bool lazy)
    {
        var (heap, corruptions, _) = NewHeap(lazy);
        using (heap)
        {
            var layout = new Layout(200, 8);
            byte* block = (byte*)heap.Allocate(layout);
            heap.Deallocate(block, layout);
            block[100] = 1;
            byte* again = (byte*)heap.Allocate(layout);
            Assert.True(again == block);
            string message = Assert.Single(corruptions);
            Assert.StartsWith(HeapCorruptionException.Prefix + "write after free", message, StringComparison.Ordinal);
            Assert.Contains($"0x{(ulong)block:x}", message, StringComparison.Ordinal);
            Assert.Contains("offset 100", message, StringComparison.Ordinal);
        }
    }

    [Fact]
    public void Allocate_WriteAfterFreeIntoMergedBuddy_IsDetected()
    {
        // Eager: the freed 64-byte block merges up to the whole heap; a write into it shows in any block handed out there.
        var (heap, corruptions, _) = NewHeap(lazy: false);
        using (heap)
        {
            var layout = new Layout(48, 8);
            byte* block = (byte*)heap.Allocate(layout);
            heap.Deallocate(block, layout);
            block[40] = 7;
            Assert.True(heap.Allocate(new Layout(4000, 8)) == block);
            Assert.Single(corruptions);
        }
    }

    [Theory]
    [InlineData(50, 50)]
    [InlineData(50, 57)]
    [InlineData(64, 64)]
    [InlineData(100, 100 + 16 + 8)] // past the canary, into the footer
    public void Deallocate_AfterOverflow_ReportsCorruptionNamingBlock(int size, int written)
    {
        var (heap, corruptions, _) = NewHeap();
        using (heap)
        {
            var layout = new Layout((nuint)size, 8);
            byte* block = (byte*)heap.Allocate(layout);
            ulong blockSize = heap.BlockSizeFor(layout);
            if ((ulong)written >= blockSize - 8)
            {
                written = (int)blockSize - 8; // the footer
            }

            block[written] ^= 0x5A;
            heap.Deallocate(block, layout);
            string message = Assert.Single(corruptions);
            Assert.StartsWith(HeapCorruptionException.Prefix + "overflow", message, StringComparison.Ordinal);
            Assert.Contains($"0x{(ulong)block:x}", message, StringComparison.Ordinal);
            heap.Validate();
        }
    }

    [Fact]
    public void CleanUse_ManyOperations_RaiseNothingAndBlocksArePoisonedAfterFree()
    {
        var (heap, corruptions, leaks) = NewHeap();
        using (heap)
        using (var extra = new TestRegion(8192 + 5, 4096))
        {
            heap.AddRegion(extra.Pointer + 5, 8192);
            var rng = new BuddySystem.Testing.SplitMix64(9);
            var live = new List<(nint, Layout)>();
            for (int i = 0; i < 20_000; i++)
            {
                if (live.Count == 0 || rng.Next(2) == 0)
                {
                    var layout = new Layout((nuint)rng.Next(600), (nuint)1 << (int)rng.Next(5));
                    byte* block = (byte*)heap.Allocate(layout);
                    if (block != null)
                    {
                        new Span<byte>(block, (int)layout.Size).Fill((byte)i);
                        live.Add(((nint)block, layout));
                    }
                }
                else
                {
                    int index = (int)rng.Next((ulong)live.Count);
                    var (block, layout) = live[index];
                    live.RemoveAt(index);
                    if (rng.Next(4) == 0)
                    {
                        byte* moved = (byte*)heap.Reallocate((void*)block, layout, layout.Size * 2);
                        live.Add(moved == null ? (block, layout) : ((nint)moved, new Layout(layout.Size * 2, layout.Align)));
                    }
                    else
                    {
                        heap.Deallocate((void*)block, layout);
                        Assert.Equal(0xDB, ((byte*)block)[Math.Min(20, (int)layout.Size + 15)]);
                    }
                }
            }

            heap.Validate();
            foreach (var (block, layout) in live)
            {
                heap.Deallocate((void*)block, layout);
            }

            heap.Trim();
            heap.Validate();
            Assert.Empty(corruptions);
            Assert.Equal(0ul, heap.Stats.UserBytes);
        }

        Assert.Empty(leaks);
    }

    [Fact]
    public void Dispose_WithLiveBlocks_ReportsThemWithStacks()
    {
        var (heap, _, leaks) = NewHeap(stacks: true);
        void* block = heap.Allocate(new Layout(30, 8));
        heap.Allocate(new Layout(3000, 8));
        heap.Dispose();
        string report = Assert.Single(leaks);
        Assert.Contains("2 blocks", report, StringComparison.Ordinal);
        Assert.Contains($"0x{(ulong)block:x}", report, StringComparison.Ordinal);
        Assert.Contains("30 bytes requested", report, StringComparison.Ordinal);
        Assert.Contains(nameof(Dispose_WithLiveBlocks_ReportsThemWithStacks), report, StringComparison.Ordinal);
    }

    [Fact]
    public void Options_ChecksOff_DetectNothingAndAddNoOverhead()
    {
        var (heap, corruptions, _) = NewHeap(poison: false, canary: false);
        using (heap)
        {
            var layout = new Layout(64, 8);
            byte* block = (byte*)heap.Allocate(layout);
            Assert.Equal(64ul, heap.Stats.AllocatedBytes);
            block[64 - 1] = 1;
            heap.Deallocate(block, layout);
            block[40] = 1;
            heap.Allocate(layout);
            Assert.Empty(corruptions);
            Assert.True(heap.IsHardened);
        }
    }

    [Fact]
    public void Misuse_OnHardenedHeap_ThrowsNamingTheCallersLayout()
    {
        var (heap, corruptions, _) = NewHeap();
        using (heap)
        {
            byte* block = (byte*)heap.Allocate(new Layout(64, 8));
            var error = Assert.Throws<ArgumentException>(() => heap.Deallocate(block, new Layout(200, 8)));
            Assert.Contains("Layout(size: 200, align: 8) (+16 bytes of hardening)", error.Message, StringComparison.Ordinal);
            heap.Deallocate(block, new Layout(64, 8));
            Assert.Throws<InvalidOperationException>(() => heap.Deallocate(block, new Layout(64, 8)));
            Assert.Empty(corruptions);
        }
    }

    [Fact]
    public void ConcurrentHeap_Hardened_DetectsWriteAfterFreeAndOverflowOnAnyThread()
    {
        var corruptions = new List<string>();
        var hardening = new HeapHardeningOptions { CorruptionHandler = m => { lock (corruptions) { corruptions.Add(m); } }, ReportLeaksOnDispose = false };
        using var heap = ConcurrentHeap.Create(1 << 16, BuddyHeapOptions.ConcurrentDefault with { Hardening = hardening });
        Assert.True(heap.IsHardened);
        Assert.Equal(16, heap.RequestOverhead);
        var layout = new Layout(40, 8);
        nint freed = 0;
        OtherThread.Run(() =>
        {
            byte* block = (byte*)heap.Allocate(layout);
            heap.Deallocate(block, layout);
            freed = (nint)block;
        });
        ((byte*)freed)[30] = 1; // after free: the next block handed out there reports it
        Assert.True(heap.Allocate(layout) == (void*)freed);
        string afterFree = Assert.Single(corruptions);
        Assert.StartsWith(HeapCorruptionException.Prefix + "write after free", afterFree, StringComparison.Ordinal);

        byte* overflowing = (byte*)heap.Allocate(layout);
        overflowing[40] = 0x5A; // one byte past the request: the canary
        heap.Deallocate(overflowing, layout);
        Assert.Equal(2, corruptions.Count);
        Assert.Contains($"0x{(ulong)overflowing:x}", corruptions[1], StringComparison.Ordinal);
    }

    [Fact]
    public void ConcurrentHeap_HardenedSizeLessCalls_ThrowNotSupportedAndChangeNothing()
    {
        using var heap = ConcurrentHeap.Create(1 << 16, BuddyHeapOptions.ConcurrentDefault with { Hardening = BuddySystem.Testing.HeapTarget.ThrowingHardening });
        var layout = new Layout(100, 8);
        void* block = heap.Allocate(layout);
        Assert.Throws<NotSupportedException>(() => heap.Deallocate(block));
        Assert.Throws<NotSupportedException>(() => heap.UsableSize(block));
        heap.Deallocate(block, layout);
        heap.Validate();
        Assert.Equal(0, heap.Stats.LiveBlocks);
    }

    [Fact]
    public void ConcurrentHeap_Rescue_AddsRegionAndTheAllocationSucceeds()
    {
        int rescues = 0;
        using var extra = new NativeRegion(1 << 16, 1 << 16);
        using (var heap = ConcurrentHeap.Create(4096, rescue: (core, _) =>
        {
            if (rescues++ == 0)
            {
                core.AddRegion(extra.Pointer, extra.Size);
            }
        }))
        {
            Assert.True(heap.Allocate(new Layout(4096, 8)) != null); // an object: a slab cut from the whole first region
            Assert.Equal(0, rescues);
            Assert.True(heap.Allocate(new Layout(16384, 8)) != null); // a cached order: refilled from the rescued region
            Assert.Equal(1, rescues);
            Assert.True(heap.Allocate(new Layout(100, 8)) != null); // an object of a new slab in the rescued region
            Assert.Equal(1, rescues);
            Assert.True(heap.Allocate(new Layout(1 << 20, 8)) == null); // above the caches: a rescue that adds nothing
            Assert.Equal(2, rescues);
            Assert.Equal(1, heap.Stats.FailedAllocations);
            heap.Validate();
        }
    }
}
