using System.IO.Compression;
using System.Numerics;

namespace BuddySystem.Cli.Traces;

/// <summary>
/// Reads an allocation trace (docs/benchmarks.md) line by line: <c>a &lt;id&gt; &lt;size&gt; &lt;align&gt;</c>,
/// <c>f &lt;id&gt;</c>, <c>r &lt;id&gt; &lt;newsize&gt;</c>; <c>#</c> starts a comment line; blank lines are skipped.
/// </summary>
/// <remarks>
/// Plain text or gzip, told apart by the gzip magic bytes (0x1f 0x8b), not by the file name. Streaming: one line is in
/// memory at a time. A gzip trace is first decompressed once to its end and checked against its trailer
/// (<see cref="GzipTrailer"/>), so a file cut short or corrupt is refused before its first operation, not read as a
/// shorter trace. The reader checks syntax only (tokens, numbers, power-of-two alignment); whether an id is live is
/// the replayer's business. A bad line throws <see cref="TraceFormatException"/> naming its number.
/// </remarks>
internal static class TraceReader
{
    /// <summary>Reads the trace at <paramref name="path"/>, plain or gzip.</summary>
    /// <exception cref="TraceFormatException">A malformed line, or a gzip file cut short or corrupt (thrown while
    /// enumerating; the latter before the first operation).</exception>
    /// <exception cref="IOException">The file cannot be read (thrown while enumerating).</exception>
    public static IEnumerable<TraceOp> Read(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        using var file = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16);
        foreach (TraceOp op in Read(file, path))
        {
            yield return op;
        }
    }

    /// <summary>Reads a trace from a seekable stream (plain or gzip); <paramref name="source"/> names it in errors.</summary>
    /// <exception cref="ArgumentException">The stream cannot seek (the magic bytes are peeked, then the stream rewound).</exception>
    /// <exception cref="TraceFormatException">A malformed line, or a broken gzip stream (thrown while enumerating).</exception>
    public static IEnumerable<TraceOp> Read(Stream stream, string source)
    {
        ArgumentNullException.ThrowIfNull(stream);
        if (!stream.CanSeek)
        {
            throw new ArgumentException("The trace stream must be seekable (its first bytes are peeked to detect gzip).", nameof(stream));
        }

        return ReadCore(stream, source);
    }

    private static IEnumerable<TraceOp> ReadCore(Stream stream, string source)
    {
        long start = stream.Position;
        int first = stream.ReadByte();
        int second = stream.ReadByte();
        stream.Position = start;
        bool gzip = first == 0x1f && second == 0x8b;
        if (gzip)
        {
            GzipTrailer.Check(stream, source);
            stream.Position = start;
        }

        // The caller's stream stays open: the reader and the decompressor both leave it to its owner.
        using GZipStream? gunzip = gzip ? new GZipStream(stream, CompressionMode.Decompress, leaveOpen: true) : null;
        using var reader = new StreamReader((Stream?)gunzip ?? stream, System.Text.Encoding.UTF8, detectEncodingFromByteOrderMarks: false, 1 << 16, leaveOpen: true);
        long lineNumber = 0;
        while (true)
        {
            string? line;
            try
            {
                line = reader.ReadLine();
            }
            catch (InvalidDataException e)
            {
                throw new TraceFormatException(source, lineNumber + 1, $"the gzip data is corrupt ({e.Message})");
            }

            if (line is null)
            {
                yield break;
            }

            lineNumber++;
            if (TryParseLine(line, source, lineNumber, out TraceOp op))
            {
                yield return op;
            }
        }
    }

    /// <summary>Parses one line; false for a blank or comment line; throws <see cref="TraceFormatException"/> when malformed.</summary>
    internal static bool TryParseLine(ReadOnlySpan<char> line, string source, long lineNumber, out TraceOp op)
    {
        op = default;
        ReadOnlySpan<char> rest = line.Trim();
        if (rest.IsEmpty || rest[0] == '#')
        {
            return false;
        }

        ReadOnlySpan<char> verb = NextToken(ref rest);
        TraceOpKind kind;
        int arguments;
        string verbName;
        switch (verb)
        {
            case "a":
                (kind, arguments, verbName) = (TraceOpKind.Allocate, 3, "a");
                break;
            case "f":
                (kind, arguments, verbName) = (TraceOpKind.Free, 1, "f");
                break;
            case "r":
                (kind, arguments, verbName) = (TraceOpKind.Reallocate, 2, "r");
                break;
            default:
                throw new TraceFormatException(source, lineNumber, $"unknown operation '{Shorten(verb)}' (expected 'a <id> <size> <align>', 'f <id>' or 'r <id> <newsize>')");
        }

        ulong id = ParseNumber(ref rest, "id", verbName, arguments, source, lineNumber);
        ulong size = arguments >= 2 ? ParseNumber(ref rest, kind == TraceOpKind.Allocate ? "size" : "newsize", verbName, arguments, source, lineNumber) : 0;
        ulong align = arguments >= 3 ? ParseNumber(ref rest, "align", verbName, arguments, source, lineNumber) : 0;
        if (!rest.IsEmpty)
        {
            throw new TraceFormatException(source, lineNumber, $"'{verbName}' takes {arguments} argument{(arguments == 1 ? "" : "s")} but the line has more: '{Shorten(rest)}'");
        }

        if (kind == TraceOpKind.Allocate && !BitOperations.IsPow2(align))
        {
            throw new TraceFormatException(source, lineNumber, $"align {align} is not a power of two");
        }

        op = new TraceOp(kind, id, size, align, lineNumber);
        return true;
    }

    private static ulong ParseNumber(ref ReadOnlySpan<char> rest, string name, string verb, int arguments, string source, long lineNumber)
    {
        ReadOnlySpan<char> token = NextToken(ref rest);
        if (token.IsEmpty)
        {
            throw new TraceFormatException(source, lineNumber, $"'{verb}' takes {arguments} argument{(arguments == 1 ? "" : "s")}; <{name}> is missing");
        }

        if (!ulong.TryParse(token, NumberStyles.None, CultureInfo.InvariantCulture, out ulong value))
        {
            throw new TraceFormatException(source, lineNumber, $"<{name}> '{Shorten(token)}' is not a decimal number in 0..{ulong.MaxValue}");
        }

        return value;
    }

    private static ReadOnlySpan<char> NextToken(ref ReadOnlySpan<char> rest)
    {
        int end = rest.IndexOfAny(' ', '\t');
        ReadOnlySpan<char> token = end < 0 ? rest : rest[..end];
        rest = end < 0 ? [] : rest[end..].TrimStart();
        return token;
    }

    private static string Shorten(ReadOnlySpan<char> text) => text.Length <= 40 ? text.ToString() : string.Concat(text[..40], "...");
}
