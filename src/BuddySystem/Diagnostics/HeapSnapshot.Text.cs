namespace BuddySystem.Diagnostics;

public sealed partial class HeapSnapshot
{
    private const string TextMagic = "buddy-snapshot 2";

    // Version 1 had no block sizes of their own and no slab lines; it is still read.
    private const string TextMagicVersion1 = "buddy-snapshot 1";

    /// <summary>
    /// Writes the snapshot as text that <see cref="Read"/> reads back: a header (<c>buddy-snapshot 1</c>, <c>min-block</c>,
    /// <c>orders</c>, <c>base</c>), then one line per run of blocks of one order, size and state lying back to back:
    /// <c>offset order state count</c>, the state one letter (A allocated, F free, C cached, U unknown), and a fifth field,
    /// the size, when it is not the order's (the objects of a slab); then one line per slab:
    /// <c>slab offset size object-size objects live-objects</c>.
    /// </summary>
    /// <param name="writer">Where to write; not closed.</param>
    /// <remarks>Runs keep the file small: a heap cut into a million 16-byte blocks of a few kinds takes a few lines per
    /// change of kind. Used by the process allocator (<c>BUDDY_MALLOC_MAP</c>) to hand its heap to <c>buddy run --map</c>.</remarks>
    /// <exception cref="ArgumentNullException"><paramref name="writer"/> is null.</exception>
    public void Write(TextWriter writer)
    {
        ArgumentNullException.ThrowIfNull(writer);
        CultureInfo inv = CultureInfo.InvariantCulture;
        writer.Write($"{TextMagic}\nmin-block {MinBlockSize.ToString(inv)}\norders {OrderCount.ToString(inv)}\nbase 0x{BaseAddress.ToString("x", inv)}\n");
        int i = 0;
        while (i < _blocks.Length)
        {
            HeapBlock first = _blocks[i];
            int count = 1;
            while (i + count < _blocks.Length && _blocks[i + count] is var next && next.Order == first.Order && next.State == first.State
                   && next.Size == first.Size && next.Offset == first.Offset + ((ulong)count * first.Size))
            {
                count++;
            }

            string size = first.Size == MinBlockSize << first.Order ? "" : " " + first.Size.ToString(inv);
            writer.Write($"{first.Offset.ToString(inv)} {first.Order.ToString(inv)} {Letter(first.State)} {count.ToString(inv)}{size}\n");
            i += count;
        }

        foreach (HeapSlab slab in Slabs)
        {
            writer.Write($"slab {slab.Offset.ToString(inv)} {slab.Size.ToString(inv)} {slab.ObjectSize.ToString(inv)} {slab.Objects.ToString(inv)} {slab.LiveObjects.ToString(inv)}\n");
        }
    }

    /// <summary>Reads a snapshot written by <see cref="Write"/>.</summary>
    /// <param name="reader">The text; read to its end.</param>
    /// <returns>The snapshot, equal block for block to the one written.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="reader"/> is null.</exception>
    /// <exception cref="InvalidDataException">The text is not such a snapshot; the message names the line.</exception>
    public static HeapSnapshot Read(TextReader reader)
    {
        ArgumentNullException.ThrowIfNull(reader);
        int lineNumber = 0;
        string Next()
        {
            lineNumber++;
            return reader.ReadLine() ?? throw new InvalidDataException($"line {lineNumber}: the snapshot ends early.");
        }

        string magic = Next();
        if (magic != TextMagic && magic != TextMagicVersion1)
        {
            throw new InvalidDataException($"line 1: not a buddy snapshot (expected '{TextMagic}').");
        }

        ulong minBlock = Header(Next(), "min-block", lineNumber);
        int orders = (int)Math.Min(Header(Next(), "orders", lineNumber), 64);
        ulong baseAddress = Header(Next(), "base", lineNumber);
        var blocks = new List<HeapBlock>();
        var slabs = new List<HeapSlab>();
        string? line;
        while ((line = reader.ReadLine()) != null)
        {
            lineNumber++;
            string[] fields = line.Split(' ');
            if (fields[0] == "slab")
            {
                if (fields.Length != 6
                    || !ulong.TryParse(fields[1], NumberStyles.None, CultureInfo.InvariantCulture, out ulong slabOffset)
                    || !ulong.TryParse(fields[2], NumberStyles.None, CultureInfo.InvariantCulture, out ulong slabSize)
                    || !uint.TryParse(fields[3], NumberStyles.None, CultureInfo.InvariantCulture, out uint objectSize)
                    || !int.TryParse(fields[4], NumberStyles.None, CultureInfo.InvariantCulture, out int objects)
                    || !int.TryParse(fields[5], NumberStyles.None, CultureInfo.InvariantCulture, out int live) || live > objects)
                {
                    throw new InvalidDataException($"line {lineNumber}: expected 'slab offset size object-size objects live-objects', got '{line}'.");
                }

                slabs.Add(new HeapSlab(slabOffset, slabSize, objectSize, objects, live));
                continue;
            }

            ulong size = 0;
            if (fields.Length is not (4 or 5)
                || !ulong.TryParse(fields[0], NumberStyles.None, CultureInfo.InvariantCulture, out ulong offset)
                || !int.TryParse(fields[1], NumberStyles.None, CultureInfo.InvariantCulture, out int order) || order >= 64
                || fields[2].Length != 1 || State(fields[2][0]) is not { } state
                || !int.TryParse(fields[3], NumberStyles.None, CultureInfo.InvariantCulture, out int count) || count < 1
                || (fields.Length == 5 && (!ulong.TryParse(fields[4], NumberStyles.None, CultureInfo.InvariantCulture, out size) || size == 0)))
            {
                throw new InvalidDataException($"line {lineNumber}: expected 'offset order state count [size]', got '{line}'.");
            }

            size = fields.Length == 5 ? size : minBlock << order;
            for (int k = 0; k < count; k++)
            {
                blocks.Add(new HeapBlock(offset + ((ulong)k * size), order, size, state));
            }
        }

        try
        {
            return new HeapSnapshot(blocks, minBlock, orders, baseAddress) { Slabs = slabs };
        }
        catch (ArgumentException e)
        {
            throw new InvalidDataException($"the snapshot's blocks are inconsistent: {e.Message}", e);
        }
    }

    private static ulong Header(string line, string key, int lineNumber)
    {
        string prefix = key + " ";
        string value = line.StartsWith(prefix, StringComparison.Ordinal) ? line[prefix.Length..] : throw new InvalidDataException($"line {lineNumber}: expected '{key} N'.");
        bool hex = value.StartsWith("0x", StringComparison.Ordinal);
        return ulong.TryParse(hex ? value[2..] : value, hex ? NumberStyles.AllowHexSpecifier : NumberStyles.None, CultureInfo.InvariantCulture, out ulong parsed)
            ? parsed
            : throw new InvalidDataException($"line {lineNumber}: '{value}' is not a number.");
    }

    private static char Letter(BlockState state) => state switch
    {
        BlockState.Allocated => 'A',
        BlockState.Free => 'F',
        BlockState.Cached => 'C',
        _ => 'U',
    };

    private static BlockState? State(char letter) => letter switch
    {
        'A' => BlockState.Allocated,
        'F' => BlockState.Free,
        'C' => BlockState.Cached,
        'U' => BlockState.Unknown,
        _ => null,
    };
}
