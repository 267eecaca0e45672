namespace BuddySystem.Testing;

/// <summary>
/// Writes a block full of words derived from a per-block cookie and checks them later: a block that another block
/// overlaps, or that the allocator scribbles on (free-list links, merged metadata), fails the check.
/// </summary>
/// <remarks>Word i holds <c>cookie + i * 0x9E3779B97F4A7C15</c>, so a block shifted by a word, or a copy of another
/// block, does not pass. The tail bytes after the last whole word hold the cookie's low bytes.</remarks>
internal static unsafe class BlockPattern
{
    private const ulong Step = 0x9E3779B97F4A7C15;

    /// <summary>Fills <paramref name="size"/> bytes at <paramref name="block"/> from <paramref name="cookie"/>.</summary>
    internal static void Fill(byte* block, nuint size, ulong cookie)
    {
        nuint words = size / 8;
        ulong* word = (ulong*)block;
        ulong value = cookie;
        for (nuint i = 0; i < words; i++)
        {
            word[i] = value;
            value += Step;
        }

        for (nuint i = words * 8; i < size; i++)
        {
            block[i] = (byte)(cookie >> (int)(i % 8 * 8));
        }
    }

    /// <summary>The offset of the first byte that differs from what <see cref="Fill"/> wrote, or -1 when all match.</summary>
    internal static long FirstMismatch(byte* block, nuint size, ulong cookie)
    {
        nuint words = size / 8;
        ulong* word = (ulong*)block;
        ulong value = cookie;
        for (nuint i = 0; i < words; i++)
        {
            if (word[i] != value)
            {
                return (long)(i * 8);
            }

            value += Step;
        }

        for (nuint i = words * 8; i < size; i++)
        {
            if (block[i] != (byte)(cookie >> (int)(i % 8 * 8)))
            {
                return (long)i;
            }
        }

        return -1;
    }
}
