using System.Globalization;
using BuddySystem.Testing;

namespace BuddySystem.Tests.Reliability;

/// <summary>
/// The actual side of the model-based tests: an engine (through <see cref="HeapTarget"/>) plus its live blocks in the
/// order the model keeps them, each patterned from a cookie. Every operation checks what it can see at once (placement,
/// contents); <see cref="Matches"/> checks the rest against the model.
/// </summary>
internal sealed unsafe class HeapUnderTest : IDisposable
{
    private static int s_undisposed;
    private readonly List<NativeRegion> _extraRegions = [];
    private int _disposed;

    public HeapUnderTest(string engine, nuint size, int guaranteedBlocks, ulong chunk)
    {
        Target = EngineCatalog.CreateTarget(engine, size);
        Interlocked.Increment(ref s_undisposed);
        GuaranteedBlocks = guaranteedBlocks;
        Chunk = chunk;
    }

    /// <summary>The placement chunk the model counts (<see cref="HeapTarget.PlacementChunk"/>).</summary>
    public ulong Chunk { get; }

    /// <summary>Tracked exactly as <see cref="HeapModel.GuaranteedBlocks"/>, so both sides skip the same allocations.</summary>
    public int GuaranteedBlocks { get; private set; }

    public bool HasRoom => Live.Count + 1 < GuaranteedBlocks;

    public HeapTarget Target { get; }

    /// <summary>Instances made and not yet disposed: a ConcurrentHeap left undisposed trims after every full collection,
    /// into regions of <see cref="AddRegion"/> that its finalized <see cref="NativeRegion"/>s have freed.</summary>
    public static int Undisposed => Volatile.Read(ref s_undisposed);

    public List<(nint Address, Layout Layout, ulong Cookie)> Live { get; } = [];

    public void Allocate(Layout layout, ulong cookie)
    {
        byte* block = (byte*)Target.Allocator.Allocate(layout);
        Assert.True(block != null, $"{Target.Name}: {layout} returned null although the model guarantees room ({Live.Count} live blocks)");
        Assert.Equal(0ul, (ulong)block % Target.BlockAlignment(layout));
        BlockPattern.Fill(block, layout.Size, cookie);
        Live.Add(((nint)block, layout, cookie));
    }

    public void AllocateTooLarge()
    {
        var layout = new Layout((nuint)(Target.Stats.TotalBytes * 2), 1);
        Assert.True(Target.Allocator.Allocate(layout) == null, $"{Target.Name}: {layout} is larger than the heap but did not return null");
    }

    public void Free(int pick)
    {
        if (Live.Count == 0)
        {
            return;
        }

        int index = pick % Live.Count;
        var (address, layout, cookie) = Live[index];
        AssertIntact(address, layout.Size, cookie);
        Target.Allocator.Deallocate((void*)address, layout);
        Live[index] = Live[^1];
        Live.RemoveAt(Live.Count - 1);
    }

    public void Reallocate(int pick, nuint newSize, ulong cookie)
    {
        if (Live.Count == 0)
        {
            return;
        }

        int index = pick % Live.Count;
        var (address, layout, oldCookie) = Live[index];
        byte* moved = (byte*)Target.Allocator.Reallocate((void*)address, layout, newSize);
        Assert.True(moved != null, $"{Target.Name}: reallocating {layout} to {newSize} returned null although the model guarantees room");
        var newLayout = new Layout(newSize, layout.Align);
        Assert.Equal(0ul, (ulong)moved % Target.BlockAlignment(newLayout));
        AssertIntact((nint)moved, Math.Min(layout.Size, newSize) & ~(nuint)7, oldCookie);
        BlockPattern.Fill(moved, newSize, cookie);
        Live[index] = ((nint)moved, newLayout, cookie);
    }

    public void AddRegion(nuint size, int offset)
    {
        var region = new NativeRegion(size + (nuint)offset, 4096);
        _extraRegions.Add(region);
        Target.AddRegion((nint)((byte*)region.Pointer + offset), size);
        GuaranteedBlocks += HeapModel.ChunksIn(size, offset, Chunk);
    }

    /// <summary>Validate() passes and the engine's accounting and every live block agree with the model.</summary>
    public bool Matches(HeapModel model)
    {
        Target.Validate();
        HeapStats stats = Target.Stats;
        Assert.Equal(model.Blocks.Count, Live.Count);
        Assert.Equal(model.Blocks.Count, stats.LiveBlocks);
        Assert.Equal(model.AllocatedBytes, stats.AllocatedBytes);
        Assert.Equal(model.UserBytes, stats.UserBytes);
        Assert.Equal(model.TotalBytes, stats.TotalBytes);
        Assert.Equal(model.TotalBytes - model.AllocatedBytes, stats.FreeBytes);
        for (int i = 0; i < Live.Count; i++)
        {
            Assert.Equal(model.Blocks[i], Live[i].Layout);
            AssertIntact(Live[i].Address, Live[i].Layout.Size, Live[i].Cookie);
        }

        // No two live blocks overlap: sorted by address, each ends before the next starts.
        var sorted = Live.Select(b => (Start: (ulong)b.Address, End: (ulong)b.Address + Target.BlockSize(b.Layout))).OrderBy(b => b.Start).ToList();
        for (int i = 1; i < sorted.Count; i++)
        {
            Assert.True(sorted[i - 1].End <= sorted[i].Start, $"blocks at 0x{sorted[i - 1].Start:x} and 0x{sorted[i].Start:x} overlap");
        }

        return true;
    }

    public override string ToString()
    {
        HeapStats stats = Target.Stats;
        return string.Create(CultureInfo.InvariantCulture, $"{Target.Name}: {Live.Count} live, {stats.AllocatedBytes} allocated of {stats.TotalBytes}");
    }

    private static void AssertIntact(nint address, nuint size, ulong cookie)
    {
        long at = BlockPattern.FirstMismatch((byte*)address, size, cookie);
        Assert.True(at < 0, $"live block 0x{address:x} of {size} bytes was overwritten at byte {at}");
    }

    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        Interlocked.Decrement(ref s_undisposed);
        Target.Dispose();
        foreach (NativeRegion region in _extraRegions)
        {
            region.Dispose();
        }
    }
}
