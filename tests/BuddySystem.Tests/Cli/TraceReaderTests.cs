using System.IO.Compression;
using System.Text;
using BuddySystem.Cli.Traces;

namespace BuddySystem.Tests;

public class TraceReaderTests
{
    private const string GoodTrace = "# buddy trace v1\na 0 5 16\n\n  # indented comment\nr 0 2048\na 18446744073709551615 1 1\nf 0\nf\t18446744073709551615\n";

    private static TraceOp[] ReadText(string text, bool gzip = false)
    {
        byte[] bytes = Encoding.UTF8.GetBytes(text);
        if (gzip)
        {
            var compressed = new MemoryStream();
            using (var zip = new GZipStream(compressed, CompressionLevel.Fastest, leaveOpen: true))
            {
                zip.Write(bytes);
            }

            bytes = compressed.ToArray();
        }

        return [.. TraceReader.Read(new MemoryStream(bytes), "test.trace")];
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Read_GoodTrace_YieldsOpsWithLineNumbers(bool gzip)
    {
        TraceOp[] ops = ReadText(GoodTrace, gzip);
        Assert.Equal(
            [
                new TraceOp(TraceOpKind.Allocate, 0, 5, 16, 2),
                new TraceOp(TraceOpKind.Reallocate, 0, 2048, 0, 5),
                new TraceOp(TraceOpKind.Allocate, ulong.MaxValue, 1, 1, 6),
                new TraceOp(TraceOpKind.Free, 0, 0, 0, 7),
                new TraceOp(TraceOpKind.Free, ulong.MaxValue, 0, 0, 8),
            ],
            ops);
    }

    [Fact]
    public void Read_GzipFileByMagicNotName_ReadsIt()
    {
        string path = Path.Combine(Path.GetTempPath(), $"buddy-trace-{Guid.NewGuid():N}.txt");
        try
        {
            using (var file = File.Create(path))
            using (var zip = new GZipStream(file, CompressionLevel.Fastest))
            {
                zip.Write(Encoding.UTF8.GetBytes("a 1 8 8\nf 1\n"));
            }

            Assert.Equal(2, TraceReader.Read(path).Count());
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Theory]
    [InlineData("a 1 8 8\nx 1\n", 2, "unknown operation 'x'")]
    [InlineData("a 1 8\n", 1, "<align> is missing")]
    [InlineData("a 1 8 3\n", 1, "align 3 is not a power of two")]
    [InlineData("a 1 8 0\n", 1, "align 0 is not a power of two")]
    [InlineData("# c\nf 1 2\n", 2, "takes 1 argument but the line has more")]
    [InlineData("a 1 -8 8\n", 1, "<size> '-8' is not a decimal number")]
    [InlineData("r 1\n", 1, "<newsize> is missing")]
    [InlineData("f 99999999999999999999\n", 1, "<id> '99999999999999999999' is not a decimal number")]
    [InlineData("a 1 0x10 8\n", 1, "<size> '0x10' is not a decimal number")]
    public void Read_MalformedLine_ThrowsNamingTheLine(string text, long line, string problem)
    {
        var error = Assert.Throws<TraceFormatException>(() => ReadText(text));
        Assert.Equal(line, error.Line);
        Assert.StartsWith($"test.trace:{line}: ", error.Message, StringComparison.Ordinal);
        Assert.Contains(problem, error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Read_TruncatedGzip_ThrowsTraceFormatException()
    {
        var compressed = new MemoryStream();
        using (var zip = new GZipStream(compressed, CompressionLevel.Fastest, leaveOpen: true))
        {
            zip.Write(Encoding.UTF8.GetBytes(string.Concat(Enumerable.Repeat("a 1 8 8\nf 1\n", 5000))));
        }

        byte[] bytes = compressed.ToArray();
        for (int i = 20; i < bytes.Length; i++)
        {
            bytes[i] ^= 0x5A;
        }

        Assert.ThrowsAny<Exception>(() => TraceReader.Read(new MemoryStream(bytes), "bad.gz").Count());
        Assert.Throws<TraceFormatException>(() => TraceReader.Read(new MemoryStream(bytes), "bad.gz").Count());
    }

    [Fact]
    public void Read_Streaming_YieldsFirstOpBeforeReadingABadTail()
    {
        using IEnumerator<TraceOp> ops = TraceReader.Read(new MemoryStream(Encoding.UTF8.GetBytes("a 1 8 8\nbad line\n")), "t").GetEnumerator();
        Assert.True(ops.MoveNext());
        Assert.Equal(TraceOpKind.Allocate, ops.Current.Kind);
        Assert.Throws<TraceFormatException>(() => ops.MoveNext());
    }
}
