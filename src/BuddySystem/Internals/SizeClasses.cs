namespace BuddySystem.Internals;

/// <summary>
/// The size classes of <see cref="SlabHeap"/>: 16 to 128 bytes in steps of 16, then eight classes per doubling up to
/// 8 KiB (spaced 12.5 % of the lower power of two apart, so a request wastes at most 12.5 % inside its object). Lookups
/// are two table reads: size to class, and for alignments above 16 the first class at or above it whose objects are
/// aligned enough (objects sit at multiples of the class size in slabs aligned to their size, so a class of size c aligns
/// to the lowest set bit of c).
/// </summary>
internal static class SizeClasses
{
    /// <summary>Number of classes.</summary>
    internal const int Count = 56;

    /// <summary>The largest request (size and alignment) served from slabs; larger go to the buddy engine.</summary>
    internal const int MaxSize = 8192;

    /// <summary>log2 of the largest slab (64 KiB).</summary>
    internal const int MaxSlabShift = 16;

    private const int MinAlignShift = 5;
    private const int MaxAlignShift = 13;

    private static readonly uint[] s_sizes = BuildSizes();
    private static readonly byte[] s_byGranules = BuildByGranules();
    private static readonly byte[] s_alignedUp = BuildAlignedUp();

    /// <summary>The object size of class <paramref name="index"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static uint SizeOf(int index) => s_sizes[index];

    /// <summary>Whether <paramref name="size"/> and <paramref name="align"/> are served from slabs.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static bool IsSmall(nuint size, nuint align) => size <= MaxSize && align <= MaxSize;

    /// <summary>The class serving a small request (see <see cref="IsSmall"/>).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static int IndexOf(nuint size, nuint align)
    {
        int index = s_byGranules[(int)((size + 15) >> 4)];
        if (align > 16)
        {
            index = s_alignedUp[((BitOperations.TrailingZeroCount(align) - MinAlignShift) * Count) + index];
        }

        return index;
    }

    /// <summary>
    /// log2 of the slab size class <paramref name="index"/> prefers: at least 16 KiB and room for 8 objects, at most
    /// 64 KiB; a heap that cannot give that size falls back to smaller slabs down to <see cref="MinSlabShift"/>. (Room for
    /// 4 objects of the classes above 1 KiB raised W6 on concurrent-heap by 0.2 points but made slab-heap fail W3
    /// allocations: docs/benchmarks.md.)
    /// </summary>
    internal static int PreferredSlabShift(int index) => Math.Min(MaxSlabShift, Math.Max(14, Orders.CeilLog2((ulong)s_sizes[index] * 8)));

    /// <summary>
    /// log2 of the next slab of class <paramref name="index"/> after <paramref name="count"/> slabs: a class's first slab
    /// is small (4 KiB, or room for two objects) and each next one twice as large, up to <see cref="PreferredSlabShift"/>.
    /// A program that touches many classes a little then holds little in slabs. The size-class tier counts the slabs a
    /// thread's class holds now, so a class that gives its slabs back starts small again; <see cref="SlabHeap"/> counts
    /// the slabs its class has ever made.
    /// </summary>
    internal static int SlabShiftFor(int index, int count)
    {
        int first = Math.Max(12, Orders.CeilLog2(s_sizes[index]) + 1);
        return Math.Min(PreferredSlabShift(index), first + Math.Min(count, MaxSlabShift));
    }

    /// <summary>The fewest objects a slab's free list is extended by at once (<see cref="ExtendCountFor"/>).</summary>
    internal const int MinExtendObjects = 4;

    /// <summary>How many never-used objects of <paramref name="objectSize"/> bytes a slab links onto its free list at a
    /// time: about 4 KiB of them, and at least <see cref="MinExtendObjects"/>.</summary>
    internal static int ExtendCountFor(uint objectSize) => Math.Max(MinExtendObjects, (int)(4096 / objectSize));

    /// <summary>log2 of the smallest slab class <paramref name="index"/> accepts: one object, and at least one 1 KiB page.</summary>
    internal static int MinSlabShift(int index) => Math.Max(SlabTier.PageShift, Orders.CeilLog2(s_sizes[index]));

    private static uint[] BuildSizes()
    {
        var sizes = new List<uint>();
        for (uint size = 16; size <= 128; size += 16)
        {
            sizes.Add(size);
        }

        for (uint power = 128; power < MaxSize; power *= 2)
        {
            for (uint step = 1; step <= 8; step++)
            {
                sizes.Add(power + (step * power / 8));
            }
        }

        return [.. sizes];
    }

    private static byte[] BuildByGranules()
    {
        uint[] sizes = BuildSizes();
        var table = new byte[(MaxSize >> 4) + 1];
        int index = 0;
        for (int granules = 0; granules < table.Length; granules++)
        {
            while (sizes[index] < (uint)granules << 4)
            {
                index++;
            }

            table[granules] = (byte)index;
        }

        return table;
    }

    private static byte[] BuildAlignedUp()
    {
        uint[] sizes = BuildSizes();
        var table = new byte[(MaxAlignShift - MinAlignShift + 1) * Count];
        for (int shift = MinAlignShift; shift <= MaxAlignShift; shift++)
        {
            for (int index = 0; index < Count; index++)
            {
                int up = index;
                while (BitOperations.TrailingZeroCount(sizes[up]) < shift)
                {
                    up++;
                }

                table[((shift - MinAlignShift) * Count) + index] = (byte)up;
            }
        }

        return table;
    }
}
