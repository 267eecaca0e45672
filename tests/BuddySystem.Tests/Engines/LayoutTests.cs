namespace BuddySystem.Tests;

public class LayoutTests
{
    [Fact]
    public void Constructor_ValidArguments_KeepsSizeAndAlign()
    {
        var layout = new Layout(100, 8);
        Assert.Equal((nuint)100, layout.Size);
        Assert.Equal((nuint)8, layout.Align);
    }

    [Theory]
    [InlineData(0)]
    [InlineData(3)]
    [InlineData(12)]
    public void Constructor_AlignNotPowerOfTwo_ThrowsWithParamName(int align)
    {
        var error = Assert.Throws<ArgumentException>(() => new Layout(8, (nuint)align));
        Assert.Equal("align", error.ParamName);
    }

    [Fact]
    public void Constructor_SizeOverflowsWhenRounded_ThrowsWithParamName()
    {
        var error = Assert.Throws<ArgumentException>(() => new Layout(nuint.MaxValue - 2, 8));
        Assert.Equal("size", error.ParamName);
    }

    [Fact]
    public void Default_IsSizeZeroAlignOne()
    {
        Layout layout = default;
        Assert.Equal((nuint)0, layout.Size);
        Assert.Equal((nuint)1, layout.Align);
    }

    [Fact]
    public void Of_PrimitiveAndStruct_NaturalSizeAndAlign()
    {
        Assert.Equal(new Layout(4, 4), Layout.Of<int>());
        Assert.Equal(new Layout(8, 8), Layout.Of<long>());
        Assert.Equal(new Layout(1, 1), Layout.Of<byte>());
        Assert.Equal(new Layout(16, 8), Layout.Of<(long, int)>());
    }

    [Fact]
    public void Array_CountTimesElement_SameAlign()
    {
        Assert.Equal(new Layout(2000, 4), Layout.Array<int>(500));
        Assert.Equal(new Layout(0, 8), Layout.Array<long>(0));
        Assert.Throws<ArgumentOutOfRangeException>(() => Layout.Array<int>(-1));
    }

    [Fact]
    public void Equality_SameFields_Equal()
    {
        Assert.True(new Layout(8, 8) == new Layout(8, 8));
        Assert.True(new Layout(8, 8) != new Layout(8, 16));
        Assert.Equal(new Layout(8, 8).GetHashCode(), new Layout(8, 8).GetHashCode());
        Assert.Equal("Layout(size: 8, align: 16)", new Layout(8, 16).ToString());
    }
}
