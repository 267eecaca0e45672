namespace BuddySystem.Tests;

/// <summary>A reference model for the random tests: one bit per unit (minimum block or frame), set when the unit is in use
/// or not managed at all.</summary>
internal sealed class UnitBitmap(int units)
{
    private readonly ulong[] _words = new ulong[Math.Max(1, units / 64)];

    public int Units { get; } = units;

    public bool IsFree(int first, int count)
    {
        for (int unit = first; unit < first + count; unit++)
        {
            if ((_words[unit / 64] & (1UL << (unit % 64))) != 0)
            {
                return false;
            }
        }

        return true;
    }

    public void Mark(int first, int count, bool used)
    {
        for (int unit = first; unit < first + count; unit++)
        {
            if (used)
            {
                _words[unit / 64] |= 1UL << (unit % 64);
            }
            else
            {
                _words[unit / 64] &= ~(1UL << (unit % 64));
            }
        }
    }

    /// <summary>Whether some run of <paramref name="count"/> units (a power of two), aligned to its size, is wholly free.</summary>
    public bool HasAlignedFreeRun(int count)
    {
        if (count > Units)
        {
            return false;
        }

        if (count >= 64)
        {
            int words = count / 64;
            for (int first = 0; first < _words.Length; first += words)
            {
                if (_words.AsSpan(first, words).IndexOfAnyExcept(0UL) < 0)
                {
                    return true;
                }
            }

            return false;
        }

        // Fold each aligned group of `count` bits into its lowest bit; a group is free when that bit is 0.
        ulong groupStarts = 0;
        for (int bit = 0; bit < Math.Min(64, Units); bit += count)
        {
            groupStarts |= 1UL << bit;
        }

        foreach (ulong word in _words)
        {
            ulong folded = word;
            for (int shift = 1; shift < count; shift <<= 1)
            {
                folded |= folded >> shift;
            }

            if ((folded & groupStarts) != groupStarts)
            {
                return true;
            }
        }

        return false;
    }
}
