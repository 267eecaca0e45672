using System.Buffers.Binary;
using System.IO.Compression;

namespace BuddySystem.Cli.Traces;

/// <summary>
/// Checks that a gzip file is whole: it decompresses without error and ends with the trailer of what it decompressed to
/// (RFC 1952: the CRC-32 and the length mod 2^32 of the data, the file's last 8 bytes).
/// </summary>
/// <remarks>
/// <para><see cref="GZipStream"/> does not always notice a file cut short: when its input ends inside the deflate data it
/// returns end of stream, and the bytes decoded so far look like a whole trace (<c>samples/bash.trace.gz</c> cut at
/// 3 500 bytes read as 980 good operations, the last line <c>f 83</c> of <c>f 834</c>). zlib checks the CRC-32 only when
/// it reaches the trailer, which a cut file does not have. So the reader checks the trailer itself: the whole file is
/// decompressed once before any line is parsed, with a CRC-32 of the output, and compared with the file's last 8 bytes.
/// A cut file's last 8 bytes are deflate data, which match the CRC-32 and length of the decoded prefix about once in
/// 2^64 cuts.</para>
/// <para>The CRC-32 is a table of 256 entries here, not System.IO.Hashing: one more package in the tool for a loop that
/// checks the samples (7 to 13 MB decompressed) in tens of milliseconds.</para>
/// <para>One gzip member only: a file of several (<c>cat a.gz b.gz</c>) ends with the trailer of its last member, not of
/// all its data, and is refused too; <c>zcat</c> then <c>gzip</c> makes it one member.</para>
/// </remarks>
internal static class GzipTrailer
{
    private const int TrailerBytes = 8;

    // The smallest gzip member: a 10-byte header, an empty deflate block (2 bytes) and the trailer.
    private const int MinMemberBytes = 10 + 2 + TrailerBytes;

    private static readonly uint[] s_crcTable = CrcTable();

    /// <summary>Decompresses <paramref name="stream"/> from its position to its end and checks the trailer; leaves the
    /// position at the end.</summary>
    /// <param name="stream">A seekable stream at the start of a gzip file.</param>
    /// <param name="source">The file's name, for the message.</param>
    /// <exception cref="TraceFormatException">The data is cut short or corrupt: "<c>SOURCE is truncated or corrupt: ...</c>".</exception>
    public static void Check(Stream stream, string source)
    {
        long start = stream.Position;
        long compressed = stream.Length - start;
        if (compressed < MinMemberBytes)
        {
            throw Broken(source, string.Create(CultureInfo.InvariantCulture, $"{compressed} bytes is shorter than the smallest gzip file ({MinMemberBytes} bytes)"));
        }

        uint crc = uint.MaxValue;
        ulong length = 0;
        byte[] buffer = new byte[1 << 16];
        try
        {
            using var gunzip = new GZipStream(stream, CompressionMode.Decompress, leaveOpen: true);
            int read;
            while ((read = gunzip.Read(buffer)) > 0)
            {
                crc = Update(crc, buffer.AsSpan(0, read));
                length += (ulong)read;
            }
        }
        catch (InvalidDataException e)
        {
            throw Broken(source, string.Create(CultureInfo.InvariantCulture, $"the gzip data is bad after {length:N0} decompressed bytes ({e.Message})"));
        }

        crc = ~crc;
        Span<byte> trailer = stackalloc byte[TrailerBytes];
        stream.Position = stream.Length - TrailerBytes;
        stream.ReadExactly(trailer);
        uint trailerCrc = BinaryPrimitives.ReadUInt32LittleEndian(trailer);
        uint trailerLength = BinaryPrimitives.ReadUInt32LittleEndian(trailer[4..]);
        if (trailerCrc != crc || trailerLength != (uint)length)
        {
            throw Broken(source, string.Create(CultureInfo.InvariantCulture,
                $"the gzip data stops after {length:N0} decompressed bytes and the file does not end with their CRC-32 and length (a file cut short, or several gzip members)"));
        }
    }

    private static TraceFormatException Broken(string source, string problem) => new($"{source} is truncated or corrupt: {problem}.");

    private static uint Update(uint crc, ReadOnlySpan<byte> bytes)
    {
        uint[] table = s_crcTable;
        foreach (byte b in bytes)
        {
            crc = table[(byte)(crc ^ b)] ^ (crc >> 8);
        }

        return crc;
    }

    // CRC-32 of gzip and zip (IEEE 802.3, reflected polynomial 0xEDB88320).
    private static uint[] CrcTable()
    {
        var table = new uint[256];
        for (uint n = 0; n < 256; n++)
        {
            uint c = n;
            for (int k = 0; k < 8; k++)
            {
                c = (c & 1) != 0 ? 0xEDB88320u ^ (c >> 1) : c >> 1;
            }

            table[n] = c;
        }

        return table;
    }
}
