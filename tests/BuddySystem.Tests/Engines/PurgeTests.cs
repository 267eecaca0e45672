using BuddySystem.Internals;
using System.Runtime.InteropServices;
using Xunit.Abstractions;

namespace BuddySystem.Tests.Engines;

/// <summary>
/// Trim gives the pages of free blocks back (issue 34, "memory goes back"), measured exactly: <c>mincore(2)</c> counts the
/// resident pages of the heap's own region, whatever the rest of the process does.
/// </summary>
public unsafe class PurgeTests(ITestOutputHelper output)
{
    private const nuint HeapSize = 64 << 20;
    private const int Large = 1 << 20;
    private const int Medium = 64 << 10;
    private const int Small = 100;

    public static TheoryData<string> Engines => ["buddy-heap", "buddy-heap-eager", "locked-heap", "slab-heap", "concurrent-heap", "concurrent-heap-buddy"];

    [LinuxTheory]
    [MemberData(nameof(Engines))]
    public void Trim_AfterFreeingEverything_LeavesUnderAnEighthOfTheRegionResident(string engine)
    {
        using Subject heap = Subject.Create(engine);
        long pages = heap.RegionPages;

        // 48 MiB: 32 blocks of 1 MiB and 256 of 64 KiB, and 4000 small objects (slabs on the slab engines), every page touched.
        List<(nint Block, Layout Layout)> live = AllocateMix(heap, 32, 256, 4000);
        foreach ((nint block, Layout layout) in live)
        {
            Touch((byte*)block, layout.Size, 0x5A);
        }

        long touched = heap.ResidentPages();
        FreeAll(heap, live);
        long freed = heap.ResidentPages();
        heap.Trim();
        long trimmed = heap.ResidentPages();
        heap.Validate();
        output.WriteLine($"{engine}: region {pages} pages; resident touched {touched}, after free {freed}, after Trim {trimmed}; purged {heap.Core.PurgedBytes} bytes");

        Assert.True(touched >= (48 << 20) / Environment.SystemPageSize, $"touched {touched}");
        Assert.True(freed >= (48 << 20) / Environment.SystemPageSize, $"the frees alone returned pages: {freed}");
        Assert.True(trimmed < pages / 8, $"{trimmed} of {pages} pages resident after Trim");

        // A second Trim advises the still-free blocks again (no spare state bit remembers them): harmless, nothing comes back.
        ulong purged = heap.Core.PurgedBytes;
        heap.Trim();
        Assert.True(heap.Core.PurgedBytes > purged);
        Assert.True(heap.ResidentPages() <= trimmed);
        heap.Validate();
    }

    [LinuxTheory]
    [MemberData(nameof(Engines))]
    public void Trim_KeepsTheDataOfLiveBlocks(string engine)
    {
        using Subject heap = Subject.Create(engine);
        List<(nint Block, Layout Layout)> all = AllocateMix(heap, 24, 192, 3000);
        var live = new List<(nint Block, Layout Layout, byte Pattern)>();
        var dead = new List<(nint Block, Layout Layout)>();
        for (int i = 0; i < all.Count; i++)
        {
            byte pattern = (byte)(0x11 + (i % 200));
            Touch((byte*)all[i].Block, all[i].Layout.Size, pattern);
            if (i % 2 == 0)
            {
                live.Add((all[i].Block, all[i].Layout, pattern));
            }
            else
            {
                dead.Add(all[i]);
            }
        }

        FreeAll(heap, dead);
        heap.Trim();
        heap.Validate();
        Assert.True(heap.Core.PurgedBytes > 0, "every other 1 MiB and 64 KiB block is free: something was purged");
        foreach ((nint block, Layout layout, byte pattern) in live)
        {
            Assert.True(new ReadOnlySpan<byte>((void*)block, (int)layout.Size).IndexOfAnyExcept(pattern) < 0, $"live block {block:x} changed by Trim");
        }

        FreeAll(heap, [.. live.Select(l => (l.Block, l.Layout))]);
        heap.Validate();
    }

    [LinuxTheory]
    [MemberData(nameof(Engines))]
    public void PurgedBlocks_AllocatedAgain_AreWritableAndTheHeapValidates(string engine)
    {
        using Subject heap = Subject.Create(engine);
        FreeAll(heap, AllocateTouched(heap));
        heap.Trim();
        long trimmed = heap.ResidentPages();

        // The same 48 MiB again, from purged memory: every byte written and read back, the heap valid throughout.
        List<(nint Block, Layout Layout)> again = AllocateMix(heap, 32, 256, 4000);
        heap.Validate();
        for (int i = 0; i < again.Count; i++)
        {
            Touch((byte*)again[i].Block, again[i].Layout.Size, (byte)(i + 1));
        }

        for (int i = 0; i < again.Count; i++)
        {
            Assert.True(new ReadOnlySpan<byte>((void*)again[i].Block, (int)again[i].Layout.Size).IndexOfAnyExcept((byte)(i + 1)) < 0);
        }

        Assert.True(heap.ResidentPages() > trimmed + ((48 << 20) / Environment.SystemPageSize) - 64, "the pages came back on touch");
        FreeAll(heap, again);
        heap.Trim();
        heap.Validate();
        Assert.True(heap.ResidentPages() < heap.RegionPages / 8);
    }

    [LinuxFact]
    public void PurgedPages_ReadAsZeros_ButTheFirstPage()
    {
        using var heap = BuddyHeap.Create(HeapSize);
        var layout = new Layout(Large, 8);
        byte* block = (byte*)heap.Allocate(layout);
        new Span<byte>(block, Large).Fill(0xAB);
        heap.Deallocate(block, layout);
        heap.Trim();

        // With every block free the heap is one block: the allocation splits it and hands out its lower half again.
        byte* again = (byte*)heap.Allocate(layout);
        Assert.True(again == block);
        int page = Environment.SystemPageSize;
        Assert.True(new ReadOnlySpan<byte>(again + page, Large - page).IndexOfAnyExcept((byte)0) < 0, "purged pages read as zeros");
        heap.Deallocate(again, layout);
        heap.Validate();
    }

    [LinuxFact]
    public void ThresholdZero_TurnsThePurgeOff()
    {
        using Subject heap = Subject.Create("buddy-heap", BuddyHeapOptions.Default with { PurgeThreshold = 0 });
        FreeAll(heap, AllocateTouched(heap));
        heap.Trim();
        Assert.Equal(0ul, heap.Core.PurgedBytes);
        Assert.True(heap.ResidentPages() >= (48 << 20) / Environment.SystemPageSize);
        heap.Validate();
    }

    [LinuxFact]
    public void Threshold_BlocksBelowItStayResident()
    {
        // 1 MiB threshold: after freeing every other 64 KiB block, none of the free blocks reaches it, so nothing is purged.
        using var heap = BuddyHeap.Create(4 << 20, BuddyHeapOptions.Eager with { PurgeThreshold = 1 << 20 });
        var layout = new Layout(Medium, 8);
        var blocks = new List<nint>();
        for (int i = 0; i < 64; i++)
        {
            byte* block = (byte*)heap.Allocate(layout);
            Touch(block, Medium, 1);
            blocks.Add((nint)block);
        }

        for (int i = 0; i < blocks.Count; i += 2)
        {
            heap.Deallocate((void*)blocks[i], layout);
        }

        heap.Trim();
        Assert.Equal(0ul, heap.PurgedBytes);
        for (int i = 1; i < blocks.Count; i += 2)
        {
            heap.Deallocate((void*)blocks[i], layout);
        }

        heap.Trim();
        Assert.Equal((4ul << 20) - (ulong)Environment.SystemPageSize, heap.PurgedBytes);
    }

    [LinuxFact]
    public void MemoryAddedByAddress_OrFromTheGc_IsNeverPurged()
    {
        const int Size = 4 << 20;
        void* raw = NativeMemory.AlignedAlloc(Size, Size);
        try
        {
            var pinned = new PinnedArrayRegion(Size, Size);
            using var heap = new BuddyHeap(BuddyHeapOptions.Eager);
            heap.AddRegion(raw, Size);
            heap.AddRegion(pinned);
            var layout = new Layout(Large, 8);
            var blocks = new List<nint>();
            for (void* block; (block = heap.Allocate(layout)) != null;)
            {
                Touch((byte*)block, Large, 7);
                blocks.Add((nint)block);
            }

            Assert.Equal(8, blocks.Count);
            foreach (nint block in blocks)
            {
                heap.Deallocate((void*)block, layout);
            }

            heap.Trim();
            Assert.Equal(0ul, heap.PurgedBytes);
            Assert.Equal(Size / Environment.SystemPageSize, ResidentPages((ulong)raw, (ulong)raw + Size));
            Assert.Equal(Size / Environment.SystemPageSize, ResidentPages((ulong)pinned.Pointer, (ulong)pinned.Pointer + Size));
            heap.Validate();
            GC.KeepAlive(pinned);
        }
        finally
        {
            NativeMemory.AlignedFree(raw);
        }
    }

    [LinuxFact]
    public void NativeRegionGivenToTheHeap_IsPurged()
    {
        using var region = new NativeRegion(4 << 20, 4 << 20, touchPages: true);
        using var heap = new BuddyHeap(BuddyHeapOptions.Eager);
        heap.AddRegion(region);
        long before = ResidentPages((ulong)region.Pointer, (ulong)region.Pointer + (4 << 20));
        heap.Trim();
        long after = ResidentPages((ulong)region.Pointer, (ulong)region.Pointer + (4 << 20));
        Assert.Equal((4 << 20) / Environment.SystemPageSize, before);
        Assert.Equal(1, after);
        heap.Validate();
    }

    [LinuxFact]
    public void HardenedHeap_CheckingWritesAfterFree_DoesNotPurgeItsPoison()
    {
        var corruptions = new List<string>();
        var hardening = new HeapHardeningOptions { ReportLeaksOnDispose = false, CorruptionHandler = corruptions.Add };
        using var heap = BuddyHeap.Create(4 << 20, BuddyHeapOptions.Default with { Hardening = hardening });
        var layout = new Layout(Large, 8);
        void* block = heap.Allocate(layout);
        Touch((byte*)block, Large, 3);
        heap.Deallocate(block, layout);
        heap.Trim();
        Assert.Equal(0ul, heap.PurgedBytes);

        // The next allocation checks the poison of the block it hands out: intact, so no corruption is reported.
        void* again = heap.Allocate(layout);
        Assert.True(again != null);
        Assert.Empty(corruptions);
        heap.Deallocate(again, layout);
        heap.Validate();
    }

    [Theory]
    [InlineData(-1)]
    [InlineData(1)]
    [InlineData(BuddyHeapOptions.MinPurgeThreshold - 1)]
    public void PurgeThreshold_OutOfRange_IsRefused(long threshold)
    {
        var options = BuddyHeapOptions.Default with { PurgeThreshold = threshold };
        Assert.Throws<ArgumentOutOfRangeException>(() => new BuddyHeap(options));
        Assert.Throws<ArgumentOutOfRangeException>(() => new ConcurrentHeap(options));
    }

    [Theory]
    [InlineData(0)]
    [InlineData(BuddyHeapOptions.MinPurgeThreshold)]
    [InlineData(long.MaxValue)]
    public void PurgeThreshold_InRange_IsTaken(long threshold)
    {
        using var heap = BuddyHeap.Create(1 << 20, BuddyHeapOptions.Default with { PurgeThreshold = threshold });
        heap.Trim();
        heap.Validate();
    }

    /// <summary>The resident pages of [start, end) rounded inward to whole pages, by <c>mincore(2)</c>.</summary>
    internal static long ResidentPages(ulong start, ulong end)
    {
        ulong page = (ulong)Environment.SystemPageSize;
        start = (start + page - 1) & ~(page - 1);
        end &= ~(page - 1);
        if (end <= start)
        {
            return 0;
        }

        ulong count = (end - start) / page;
        byte[] vector = new byte[count];
        fixed (byte* v = vector)
        {
            Assert.Equal(0, Libc.Mincore((void*)start, (nuint)(end - start), v));
        }

        long resident = 0;
        foreach (byte entry in vector)
        {
            resident += entry & 1;
        }

        return resident;
    }

    private static List<(nint Block, Layout Layout)> AllocateTouched(Subject heap)
    {
        List<(nint Block, Layout Layout)> blocks = AllocateMix(heap, 32, 256, 4000);
        foreach ((nint block, Layout layout) in blocks)
        {
            Touch((byte*)block, layout.Size, 0x5A);
        }

        return blocks;
    }

    private static List<(nint Block, Layout Layout)> AllocateMix(Subject heap, int large, int medium, int small)
    {
        var blocks = new List<(nint, Layout)>();
        var sizes = new (int Count, Layout Layout)[] { (large, new Layout(Large, 8)), (medium, new Layout(Medium, 8)), (small, new Layout(Small, 8)) };
        foreach ((int count, Layout layout) in sizes)
        {
            for (int i = 0; i < count; i++)
            {
                void* block = heap.Allocator.Allocate(layout);
                Assert.True(block != null, $"allocation {i} of {layout.Size} bytes failed");
                blocks.Add(((nint)block, layout));
            }
        }

        return blocks;
    }

    private static void FreeAll(Subject heap, List<(nint Block, Layout Layout)> blocks)
    {
        foreach ((nint block, Layout layout) in blocks)
        {
            heap.Allocator.Deallocate((void*)block, layout);
        }
    }

    private static void Touch(byte* block, nuint size, byte value) => new Span<byte>(block, (int)size).Fill(value);

    /// <summary>One engine with a Trim over a 64 MiB region it owns, and its buddy core (whose region mincore reads).</summary>
    private sealed class Subject(IAllocator allocator, BuddyHeap core, Action trim, Action validate, IDisposable owner) : IDisposable
    {
        public IAllocator Allocator { get; } = allocator;

        public BuddyHeap Core { get; } = core;

        public long RegionPages => (long)((Core.RegionAt(0).End - Core.RegionAt(0).Start) / (ulong)Environment.SystemPageSize);

        public static Subject Create(string engine, BuddyHeapOptions? options = null)
        {
            switch (engine)
            {
                case "buddy-heap":
                case "buddy-heap-eager":
                    BuddyHeap buddy = BuddyHeap.Create(HeapSize, options ?? (engine == "buddy-heap" ? BuddyHeapOptions.Default : BuddyHeapOptions.Eager));
                    return new Subject(buddy, buddy, buddy.Trim, buddy.Validate, buddy);
                case "locked-heap":
                    LockedHeap locked = LockedHeap.Create(HeapSize, options: options);
                    return new Subject(locked, locked.WithHeap(h => h), locked.Trim, locked.Validate, locked);
                case "slab-heap":
                    SlabHeap slab = SlabHeap.Create(HeapSize);
                    return new Subject(slab, slab.Buddy, slab.Trim, slab.Validate, slab);
                case "concurrent-heap":
                case "concurrent-heap-buddy":
                    ConcurrentHeap concurrent = ConcurrentHeap.Create(HeapSize, options ?? (engine == "concurrent-heap" ? BuddyHeapOptions.ConcurrentDefault : BuddyHeapOptions.ConcurrentBuddyOnly));
                    return new Subject(concurrent, concurrent.Core, concurrent.Trim, concurrent.Validate, concurrent);
                default:
                    throw new ArgumentException(engine, nameof(engine));
            }
        }

        public long ResidentPages() => PurgeTests.ResidentPages(Core.RegionAt(0).Start, Core.RegionAt(0).End);

        public void Trim() => trim();

        public void Validate() => validate();

        public void Dispose() => owner.Dispose();
    }

    [LinuxTheory]
    [MemberData(nameof(Engines))]
    public void StatsResidentBytes_FollowTheResidentPages_AndFallOnTrim(string engine)
    {
        using Subject heap = Subject.Create(engine);
        List<(nint Block, Layout Layout)> live = AllocateMix(heap, 32, 256, 4000);
        foreach ((nint block, Layout layout) in live)
        {
            Touch((byte*)block, layout.Size, 0x5A);
        }

        FreeAll(heap, live);
        var stats = ((IHeapStatsSource)heap.Allocator).Stats;
        long page = Environment.SystemPageSize;
        output.WriteLine($"{engine}: resident {stats.ResidentBytes} bytes by Stats, {heap.ResidentPages() * page} by the test");
        Assert.Equal((ulong)(heap.ResidentPages() * page), stats.ResidentBytes);

        heap.Trim();
        stats = ((IHeapStatsSource)heap.Allocator).Stats;
        Assert.Equal((ulong)(heap.ResidentPages() * page), stats.ResidentBytes);
        Assert.True(stats.ResidentBytes < stats.TotalBytes / 8, $"{stats.ResidentBytes} of {stats.TotalBytes} bytes resident after Trim");
    }

    [LinuxFact]
    public void ConcurrentHeapLeftIdle_GivesItsPagesBackFromItsGen2Callback_WithoutTrim()
    {
        using Subject heap = Subject.Create("concurrent-heap");
        var concurrent = (ConcurrentHeap)heap.Allocator;
        List<(nint Block, Layout Layout)> live = AllocateMix(heap, 32, 256, 4000);
        foreach ((nint block, Layout layout) in live)
        {
            Touch((byte*)block, layout.Size, 0x5A);
        }

        FreeAll(heap, live);
        long freed = heap.ResidentPages();

        // What the Gen2 callback runs after each full collection, called here directly: full collections of the other
        // tests running in parallel call it too, at times this test does not control. The first call after the
        // allocations above sees the heap in use; a later one with no allocation in between gives the memory back.
        concurrent.TrimIdle();
        concurrent.TrimIdle();
        long idle = heap.ResidentPages();
        output.WriteLine($"region {heap.RegionPages} pages; resident after free {freed}, after two idle rounds {idle}");
        Assert.True(freed >= (48 << 20) / Environment.SystemPageSize, $"the frees alone returned pages: {freed}");
        Assert.True(idle < heap.RegionPages / 8, $"{idle} of {heap.RegionPages} pages resident after the idle rounds");

        // In use again: the next idle spell purges again.
        live = AllocateMix(heap, 32, 0, 0);
        foreach ((nint block, Layout layout) in live)
        {
            Touch((byte*)block, layout.Size, 0x5A);
        }

        FreeAll(heap, live);
        concurrent.TrimIdle();
        concurrent.TrimIdle();
        Assert.True(heap.ResidentPages() < heap.RegionPages / 8, $"{heap.ResidentPages()} pages resident after the second idle spell");
        heap.Validate();
    }
}
