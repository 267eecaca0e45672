using BuddySystem.Diagnostics;

namespace BuddySystem.Tests;

public class FragmentationTests
{
    // buddyinfo [2, 1, 0, 1]: free = 2·1 + 1·2 + 1·8 = 12 order-0 blocks in 4 blocks.
    private static readonly long[] s_mixed = [2, 1, 0, 1];

    [Theory]
    [InlineData(0, 0.0)]            // suitable = 12: every free byte serves an order-0 request
    [InlineData(1, 2.0 / 12)]       // suitable = 0 + 1 + 0 + 4 = 5 → (12 − 10) / 12: the two order-0 blocks are unusable
    [InlineData(2, 4.0 / 12)]       // suitable = 2 → (12 − 8) / 12
    [InlineData(3, 4.0 / 12)]       // suitable = 1 → (12 − 8) / 12
    [InlineData(4, 1.0)]            // suitable = 0: nothing is usable
    public void UnusableFreeIndex_MixedOrders_MatchesHandComputed(int order, double expected)
    {
        Assert.Equal(expected, Fragmentation.UnusableFreeIndex(s_mixed, order), 12);
    }

    [Theory]
    [InlineData(0)]
    [InlineData(1)]
    [InlineData(3)]
    public void FragmentationIndex_BlockOfOrderAvailable_IsMinusOne(int order)
    {
        Assert.Equal(-1.0, Fragmentation.FragmentationIndex(s_mixed, order));
    }

    [Fact]
    public void FragmentationIndex_NoSuitableBlock_MatchesHandComputed()
    {
        // 1 − (1 + 12/16) / 4 = 1 − 1.75 / 4 = 0.5625
        Assert.Equal(0.5625, Fragmentation.FragmentationIndex(s_mixed, 4), 12);
    }

    [Theory]
    [InlineData(1, 0.25)]   // four order-0 blocks, order 1 wanted: 1 − (1 + 4/2) / 4
    [InlineData(2, 0.5)]    // 1 − (1 + 4/4) / 4
    [InlineData(3, 0.625)]  // 1 − (1 + 4/8) / 4
    public void FragmentationIndex_AllMemoryInSmallestBlocks_GrowsWithOrder(int order, double expected)
    {
        long[] scattered = [4, 0, 0];
        Assert.Equal(expected, Fragmentation.FragmentationIndex(scattered, order), 12);
        Assert.Equal(1.0, Fragmentation.UnusableFreeIndex(scattered, order));
    }

    [Fact]
    public void FragmentationIndex_OneBlockJustTooSmall_IsNegative()
    {
        // One free order-2 block, order 3 wanted: 1 − (1 + 4/8) / 1 = −0.5: a failure for lack of memory, not fragmentation.
        long[] single = [0, 0, 1];
        Assert.Equal(-0.5, Fragmentation.FragmentationIndex(single, 3), 12);
        Assert.Equal(1.0, Fragmentation.UnusableFreeIndex(single, 3));
        Assert.Equal(0.0, Fragmentation.UnusableFreeIndex(single, 2));
    }

    [Fact]
    public void Indices_NoFreeMemory_UnusableIsOneAndFragmentationIsZero()
    {
        Assert.Equal(1.0, Fragmentation.UnusableFreeIndex([0, 0, 0], 0));
        Assert.Equal(0.0, Fragmentation.FragmentationIndex([0, 0, 0], 0));
        Assert.Equal(1.0, Fragmentation.UnusableFreeIndex([], 5));
        Assert.Equal(0.0, Fragmentation.FragmentationIndex([], 5));
    }

    [Fact]
    public void Indices_BadArguments_Throw()
    {
        Assert.Throws<ArgumentNullException>(() => Fragmentation.UnusableFreeIndex(null!, 0));
        Assert.Throws<ArgumentOutOfRangeException>(() => Fragmentation.FragmentationIndex(s_mixed, -1));
        Assert.Throws<ArgumentOutOfRangeException>(() => Fragmentation.FragmentationIndex(s_mixed, 64));
        Assert.Throws<ArgumentOutOfRangeException>(() => Fragmentation.UnusableFreeIndex([1, -1], 0));
    }
}
