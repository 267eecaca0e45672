using System.Buffers.Binary;
using System.Runtime.InteropServices;

namespace BuddySystem.Cli;

/// <summary>
/// Whether a file can be an LD_PRELOAD allocator for this process's children: an ELF shared object of this machine that
/// defines and exports <c>malloc</c>. ld.so skips any other file with a warning and the program runs on glibc, so
/// <c>buddy run --library /etc/passwd -- /bin/true</c> used to exit 0 as if it had run on the buddy heap.
/// </summary>
/// <remarks>
/// Reads the ELF header (magic, 64-bit little-endian, <c>e_type</c> ET_DYN, <c>e_machine</c> of this process), then the
/// section headers for the dynamic symbol table (<c>.dynsym</c>, SHT_DYNSYM) and its string table, and looks for a
/// <c>malloc</c> that is defined (a section index, not SHN_UNDEF), global or weak, and a function (or an indirect one).
/// A PIE program is ET_DYN too, but it imports <c>malloc</c> rather than defining it, so it is refused. The file is read
/// whole: a malloc library is a few MB at most, and a file above <see cref="MaxBytes"/> is refused unread.
/// </remarks>
internal static class PreloadLibrary
{
    /// <summary>The largest file read (libbuddymalloc.so is about 2 MB; glibc's libc.so.6 2 MB).</summary>
    public const long MaxBytes = 256L << 20;

    private const ushort EtDyn = 3;
    private const uint ShtDynsym = 11;
    private const int SymbolBytes = 24;

    /// <summary>Null when <paramref name="path"/> can be preloaded as an allocator; otherwise why not, for a line after
    /// the file's name ("is not an ELF file").</summary>
    public static string? Problem(string path)
    {
        byte[] bytes;
        try
        {
            long length = new FileInfo(path).Length;
            if (length > MaxBytes)
            {
                return $"is {ByteSize.Rounded((ulong)length)}, larger than any malloc library ({ByteSize.Long(MaxBytes)})";
            }

            bytes = File.ReadAllBytes(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return $"cannot be read ({e.Message})";
        }

        return Problem(bytes);
    }

    /// <summary>As <see cref="Problem(string)"/>, for the file's bytes.</summary>
    internal static string? Problem(ReadOnlySpan<byte> elf)
    {
        if (elf.Length < 64 || !elf[..4].SequenceEqual("\u007fELF"u8))
        {
            return "is not an ELF file (no 0x7f 'ELF' at its start), so not a shared library";
        }

        if (elf[4] != 2 || elf[5] != 1)
        {
            return "is not a 64-bit little-endian ELF file, as this machine's programs are";
        }

        ushort type = BinaryPrimitives.ReadUInt16LittleEndian(elf[16..]);
        if (type != EtDyn)
        {
            return $"is an ELF file of type {type}, not a shared object (ET_DYN, 3)";
        }

        ushort machine = BinaryPrimitives.ReadUInt16LittleEndian(elf[18..]);
        if (ExpectedMachine() is { } expected && machine != expected)
        {
            return $"is built for ELF machine {machine}, not this one ({RuntimeInformation.ProcessArchitecture}, {expected})";
        }

        ulong sectionOffset = BinaryPrimitives.ReadUInt64LittleEndian(elf[40..]);
        ushort sectionSize = BinaryPrimitives.ReadUInt16LittleEndian(elf[58..]);
        ushort sectionCount = BinaryPrimitives.ReadUInt16LittleEndian(elf[60..]);
        if (sectionSize < 64 || sectionOffset == 0 || sectionOffset > (ulong)elf.Length || (ulong)sectionCount * sectionSize > (ulong)elf.Length - sectionOffset)
        {
            return "has no section headers to find its dynamic symbols in";
        }

        for (int i = 0; i < sectionCount; i++)
        {
            ReadOnlySpan<byte> section = elf.Slice((int)sectionOffset + (i * sectionSize), 64);
            if (BinaryPrimitives.ReadUInt32LittleEndian(section[4..]) != ShtDynsym)
            {
                continue;
            }

            uint link = BinaryPrimitives.ReadUInt32LittleEndian(section[40..]);
            if (link >= sectionCount)
            {
                return "has a dynamic symbol table without its string table";
            }

            ReadOnlySpan<byte> strings = Contents(elf, elf.Slice((int)sectionOffset + ((int)link * sectionSize), 64));
            ReadOnlySpan<byte> symbols = Contents(elf, section);
            for (int at = 0; at + SymbolBytes <= symbols.Length; at += SymbolBytes)
            {
                ReadOnlySpan<byte> symbol = symbols.Slice(at, SymbolBytes);
                uint name = BinaryPrimitives.ReadUInt32LittleEndian(symbol);
                if (name < strings.Length && strings[(int)name..].StartsWith("malloc\0"u8) && Exported(symbol))
                {
                    return null;
                }
            }

            return "does not export malloc (it is not an allocator: LD_PRELOAD would change nothing)";
        }

        return "has no dynamic symbol table, so exports nothing";
    }

    // Defined here (a section index, not SHN_UNDEF), global or weak, a function or an indirect function.
    private static bool Exported(ReadOnlySpan<byte> symbol)
    {
        byte info = symbol[4];
        int binding = info >> 4;
        int kind = info & 0xf;
        ushort sectionIndex = BinaryPrimitives.ReadUInt16LittleEndian(symbol[6..]);
        return sectionIndex != 0 && binding is 1 or 2 && kind is 2 or 10;
    }

    private static ReadOnlySpan<byte> Contents(ReadOnlySpan<byte> elf, ReadOnlySpan<byte> section)
    {
        ulong offset = BinaryPrimitives.ReadUInt64LittleEndian(section[24..]);
        ulong size = BinaryPrimitives.ReadUInt64LittleEndian(section[32..]);
        return offset <= (ulong)elf.Length && size <= (ulong)elf.Length - offset ? elf.Slice((int)offset, (int)size) : [];
    }

    private static ushort? ExpectedMachine() => RuntimeInformation.ProcessArchitecture switch
    {
        Architecture.X64 => 62,
        Architecture.Arm64 => 183,
        _ => null,
    };
}
