namespace BuddySystem.Internals;

/// <summary>Order arithmetic shared by the engines: block sizes are <c>minBlock &lt;&lt; order</c>.</summary>
internal static class Orders
{
    /// <summary>log2 of the smallest power of two that is at least <paramref name="value"/> (0 for 0 and 1).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static int CeilLog2(ulong value) => value <= 1 ? 0 : 64 - BitOperations.LeadingZeroCount(value - 1);

    /// <summary>log2 of the largest power of two that is at most <paramref name="value"/>; <paramref name="value"/> must be non-zero.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static int FloorLog2(ulong value) => 63 - BitOperations.LeadingZeroCount(value);

    /// <summary>
    /// The order of the block serving <paramref name="size"/> bytes aligned to <paramref name="align"/> when order 0 is
    /// <c>1 &lt;&lt; minShift</c> bytes: block = max(next power of two of size, align, min block). Returns 64 or more
    /// when the block would not fit in 64 bits.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static int OrderFor(ulong size, ulong align, int minShift)
    {
        // size | align | 1: the highest of the three decides; CeilLog2 of the max equals max of CeilLog2s for a power-of-two align.
        int shift = Math.Max(CeilLog2(size), BitOperations.TrailingZeroCount(align | (1UL << 63)));
        return Math.Max(shift, minShift) - minShift;
    }

    /// <summary>
    /// The largest order whose block can start at <paramref name="address"/> (aligned to its size) and end at or before
    /// <paramref name="end"/>; -1 when not even order 0 fits.
    /// </summary>
    internal static int LargestFittingOrder(ulong address, ulong end, int minShift, int maxOrder)
    {
        if (end <= address || end - address < (1UL << minShift))
        {
            return -1;
        }

        int byAlignment = address == 0 ? 63 : BitOperations.TrailingZeroCount(address);
        int bySize = FloorLog2(end - address);
        return Math.Min(Math.Min(byAlignment, bySize) - minShift, maxOrder);
    }
}
