using BuddySystem.Cli.Text;

namespace BuddySystem.Tests;

public class ByteSizeTests
{
    [Theory]
    [InlineData("4096", 4096UL)]
    [InlineData("64B", 64UL)]
    [InlineData("64K", 65536UL)]
    [InlineData("512KiB", 512UL << 10)]
    [InlineData("32m", 32UL << 20)]
    [InlineData("32M", 32UL << 20)]
    [InlineData("64MiB", 64UL << 20)]
    [InlineData(" 1GiB ", 1UL << 30)]
    [InlineData("1G", 1UL << 30)]
    [InlineData("2TiB", 2UL << 40)]
    public void TryParse_Sizes_AreBinaryUnits(string text, ulong expected)
    {
        Assert.True(ByteSize.TryParse(text, out ByteSize size));
        Assert.Equal(expected, size.Bytes);
    }

    [Theory]
    [InlineData("")]
    [InlineData("KiB")]
    [InlineData("-1")]
    [InlineData("1.5MiB")]
    [InlineData("12 parsecs")]
    [InlineData("99999999999999999999G")]
    [InlineData("17179869184G")]
    public void TryParse_Nonsense_Fails(string text) => Assert.False(ByteSize.TryParse(text, out _));

    [Theory]
    [InlineData(16UL, "16 B", "16B", "16 B")]
    [InlineData(1536UL, "1536 B", "1.5K", "1.5 KiB")]
    [InlineData(8UL << 20, "8 MiB", "8M", "8 MiB")]
    public void Formats_LongShortRounded(ulong bytes, string longText, string shortText, string rounded)
    {
        Assert.Equal(longText, ByteSize.Long(bytes));
        Assert.Equal(longText, new ByteSize(bytes).ToString());
        Assert.Equal(shortText, ByteSize.Short(bytes));
        Assert.Equal(rounded, ByteSize.Rounded(bytes));
    }
}
