namespace BuddySystem.Tests;

/// <summary>The one public block-size rule: <see cref="BuddyHeap.BlockSizeOf"/>, <see cref="BuddyHeap.BlockSizeFor"/> and <see cref="BuddyTree.BlockSizeFor"/>.</summary>
public unsafe class BlockSizeTests
{
    [Theory]
    [InlineData(0, 1, 16)]
    [InlineData(1, 1, 16)]
    [InlineData(16, 1, 16)]
    [InlineData(17, 1, 32)]
    [InlineData(100, 8, 128)]
    [InlineData(100, 256, 256)]
    [InlineData(4096, 4096, 4096)]
    [InlineData(4097, 16, 8192)]
    [InlineData(1, 1 << 20, 1 << 20)]
    public void BlockSizeOf_IsMaxOfNextPowerOfTwoAlignAndMinBlock(long size, long align, long expected)
        => Assert.Equal((nuint)expected, BuddyHeap.BlockSizeOf(new Layout((nuint)size, (nuint)align)));

    [Fact]
    public void BlockSizeOf_LargestBlock_IsHalfTheAddressSpace()
        => Assert.Equal((nuint)1 << 63, BuddyHeap.BlockSizeOf(new Layout(((nuint)1 << 63) - 1, 1)));

    [Fact]
    public void BlockSizeOf_BeyondTheLargestBlock_Throws()
        => Assert.Throws<ArgumentOutOfRangeException>(() => BuddyHeap.BlockSizeOf(new Layout(((nuint)1 << 63) + 1, 1)));

    [Theory]
    [InlineData(1)]
    [InlineData(100)]
    [InlineData(5000)]
    public void BlockSizeOf_MatchesTheBlockTheHeapHandsOut(int size)
    {
        using var heap = BuddyHeap.Create(1 << 20, BuddyHeapOptions.Eager);
        var layout = new Layout((nuint)size, 8);
        ulong freeBefore = heap.Stats.FreeBytes;
        void* block = heap.Allocate(layout);
        Assert.Equal((ulong)BuddyHeap.BlockSizeOf(layout), freeBefore - heap.Stats.FreeBytes);
        Assert.Equal(0ul, (ulong)block % BuddyHeap.BlockSizeOf(layout));
        heap.Deallocate(block, layout);
    }

    [Fact]
    public void BlockSizeFor_HardenedHeap_AddsTheOverheadFirst()
    {
        using var plain = BuddyHeap.Create(1 << 16);
        using var hardened = BuddyHeap.Create(1 << 16, BuddyHeapOptions.Default with { Hardening = new HeapHardeningOptions { ReportLeaksOnDispose = false } });
        var layout = new Layout(16, 8);
        Assert.Equal(0, plain.RequestOverhead);
        Assert.Equal(16, hardened.RequestOverhead);
        Assert.Equal((nuint)16, plain.BlockSizeFor(layout));
        Assert.Equal((nuint)32, hardened.BlockSizeFor(layout));
    }

    [Theory]
    [InlineData(1, 1, 4096)]
    [InlineData(5000, 1, 8192)]
    [InlineData(1, 65536, 65536)]
    public void TreeBlockSizeFor_UsesTheTreesSmallestBlock(long size, long align, long expected)
        => Assert.Equal((ulong)expected, new BuddyTree(1 << 20, 4096).BlockSizeFor((ulong)size, (ulong)align));

    [Fact]
    public void TreeBlockSizeFor_AlignNotPowerOfTwo_Throws()
        => Assert.Throws<ArgumentException>(() => new BuddyTree(1 << 20).BlockSizeFor(1, 3));
}
