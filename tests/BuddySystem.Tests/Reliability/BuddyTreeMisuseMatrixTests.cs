using System.Globalization;

namespace BuddySystem.Tests.Reliability;

/// <summary>
/// The misuse matrix of issue 6 for the offset engine <see cref="BuddyTree"/>, one test per row. Its contract differs from
/// the pointer heaps in two rows: every bad free (double free included) is an <see cref="ArgumentException"/> naming the
/// offset, and it has nothing to dispose. Each test asserts that the tree still validates, kept its accounting, and serves.
/// </summary>
public class BuddyTreeMisuseMatrixTests
{
    private const ulong Capacity = 1 << 16;

    private static string Hex(ulong offset) => "0x" + offset.ToString("x", CultureInfo.InvariantCulture);

    private static BuddyTree NewTree(out ulong block)
    {
        var tree = new BuddyTree(Capacity, 16);
        block = tree.Allocate(64, 8);
        return tree;
    }

    private static void AssertStillServes(BuddyTree tree, BuddyTreeStats before, ulong block)
    {
        tree.Validate();
        BuddyTreeStats after = tree.Stats;
        Assert.Equal(before.AllocatedBytes, after.AllocatedBytes);
        Assert.Equal(before.LiveBlocks, after.LiveBlocks);
        Assert.Equal(before.FreeBlocksByOrder, after.FreeBlocksByOrder);
        Assert.True(tree.TryAllocate(64, 8, out ulong extra));
        tree.Free(extra, 64, 8);
        tree.Free(block, 64, 8);
        tree.Validate();
        Assert.Equal(Capacity, tree.Stats.LargestFreeBlock);
    }

    [Fact]
    public void Free_DoubleFree_ThrowsArgumentNamingOffset()
    {
        BuddyTree tree = NewTree(out ulong block);
        ulong second = tree.Allocate(64, 8);
        tree.Free(second);
        BuddyTreeStats before = tree.Stats;
        var error = Assert.Throws<ArgumentException>(() => tree.Free(second));
        Assert.Contains(Hex(second), error.Message, StringComparison.Ordinal);
        AssertStillServes(tree, before, block);
    }

    [Fact]
    public void Free_InteriorOffset_ThrowsArgumentNamingOffset()
    {
        BuddyTree tree = NewTree(out ulong block);
        BuddyTreeStats before = tree.Stats;
        foreach (ulong offset in new[] { block + 16, block + 3, block + 48 })
        {
            var error = Assert.Throws<ArgumentException>(() => tree.Free(offset));
            Assert.Contains(Hex(offset), error.Message, StringComparison.Ordinal);
        }

        AssertStillServes(tree, before, block);
    }

    [Fact]
    public void Free_NeverAllocatedOffset_ThrowsArgumentNamingOffset()
    {
        BuddyTree tree = NewTree(out ulong block);
        BuddyTreeStats before = tree.Stats;
        foreach (ulong offset in new[] { Capacity / 2, (Capacity / 2) + 48, Capacity - 16 })
        {
            var error = Assert.Throws<ArgumentException>(() => tree.Free(offset));
            Assert.Contains(Hex(offset), error.Message, StringComparison.Ordinal);
        }

        AssertStillServes(tree, before, block);
    }

    [Fact]
    public void Free_OffsetOutsideTheTree_ThrowsArgumentNamingOffset()
    {
        // The offset engine's "pointer from another heap": an offset another, larger tree could have handed out.
        BuddyTree tree = NewTree(out ulong block);
        var other = new BuddyTree(Capacity * 4, 16);
        ulong foreign = Math.Max(other.Allocate(Capacity * 2), other.Allocate(Capacity * 2)); // the one past this tree's end
        BuddyTreeStats before = tree.Stats;
        var error = Assert.Throws<ArgumentException>(() => tree.Free(foreign));
        Assert.Contains(Hex(foreign), error.Message, StringComparison.Ordinal);
        AssertStillServes(tree, before, block);
    }

    [Theory]
    [InlineData(16, 8)]
    [InlineData(65, 8)]
    [InlineData(64, 128)]
    public void Free_SizeOfAnotherBlockSize_ThrowsArgumentNamingOffset(int size, int align)
    {
        BuddyTree tree = NewTree(out ulong block);
        BuddyTreeStats before = tree.Stats;
        var error = Assert.Throws<ArgumentException>(() => tree.Free(block, (ulong)size, (ulong)align));
        Assert.Contains(Hex(block), error.Message, StringComparison.Ordinal);
        AssertStillServes(tree, before, block);
    }

    [Fact]
    public void Allocate_LargerThanTree_TryAllocateFalseAndAllocateThrowsHeapExhausted()
    {
        BuddyTree tree = NewTree(out ulong block);
        BuddyTreeStats before = tree.Stats;
        Assert.False(tree.TryAllocate(Capacity + 1, 1, out ulong offset));
        Assert.Equal(0ul, offset);
        Assert.False(tree.TryAllocate(ulong.MaxValue, 1, out _));
        Assert.False(tree.TryAllocate(1, 1UL << 63, out _));
        var error = Assert.Throws<HeapExhaustedException>(() => tree.Allocate(Capacity));
        Assert.Equal(Capacity, error.RequestedSize);
        Assert.Equal(Capacity / 2, error.LargestFreeBlock);
        AssertStillServes(tree, before, block);
    }

    [Fact]
    public void Allocate_NonPowerOfTwoAlignment_ThrowsArgument()
    {
        BuddyTree tree = NewTree(out ulong block);
        BuddyTreeStats before = tree.Stats;
        foreach (ulong align in new ulong[] { 0, 3, 24, 4097 })
        {
            var error = Assert.Throws<ArgumentException>(() => tree.TryAllocate(64, align, out _));
            Assert.Equal("align", error.ParamName);
            Assert.Throws<ArgumentException>(() => tree.Free(block, 64, align));
        }

        AssertStillServes(tree, before, block);
    }
}
