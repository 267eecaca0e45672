using System.Globalization;
using BuddySystem.Testing;

namespace BuddySystem.Tests.Reliability;

/// <summary>
/// The model side: the live blocks' layouts in the order the actual keeps them, and the byte totals the engine must
/// report for them (block sizes by the engine's own rule). Block addresses are not modelled (the engines may place blocks
/// anywhere that is free and aligned).
/// </summary>
/// <param name="totalBytes">The heap's bytes.</param>
/// <param name="guaranteedBlocks">See <see cref="GuaranteedBlocks"/>.</param>
/// <param name="blockSize">The engine's block size for a layout (<see cref="HeapTarget.BlockSize"/>).</param>
/// <param name="chunk">The engine's placement chunk (<see cref="HeapTarget.PlacementChunk"/>).</param>
internal sealed class HeapModel(ulong totalBytes, int guaranteedBlocks, Func<Layout, ulong> blockSize, ulong chunk)
{
    public List<Layout> Blocks { get; } = [];

    public ulong TotalBytes { get; private set; } = totalBytes;

    /// <summary>
    /// How many blocks of at most <see cref="HeapModelTests.MaxBlock"/> bytes are sure to fit whatever their placement:
    /// each live block sits inside one aligned chunk (its buddy block, or its slab), so while fewer blocks are live than
    /// the heap has chunks, some chunk is wholly free and the next request must succeed.
    /// </summary>
    public int GuaranteedBlocks { get; private set; } = guaranteedBlocks;

    public ulong AllocatedBytes => Blocks.Aggregate(0ul, (sum, layout) => sum + blockSize(layout));

    public ulong UserBytes => Blocks.Aggregate(0ul, (sum, layout) => sum + layout.Size);

    /// <summary>Whether one more block (or a reallocation, which holds two for a moment) is sure to fit.</summary>
    public bool HasRoom => Blocks.Count + 1 < GuaranteedBlocks;

    public void Free(int pick)
    {
        if (Blocks.Count == 0)
        {
            return;
        }

        int index = pick % Blocks.Count;
        Blocks[index] = Blocks[^1];
        Blocks.RemoveAt(Blocks.Count - 1);
    }

    public void Reallocate(int pick, nuint newSize)
    {
        if (Blocks.Count != 0)
        {
            int index = pick % Blocks.Count;
            Blocks[index] = new Layout(newSize, Blocks[index].Align);
        }
    }

    /// <summary>A region placed <paramref name="offset"/> bytes past a 4 KiB boundary adds its whole 16-byte granules.</summary>
    public void AddRegion(nuint size, int offset)
    {
        TotalBytes += UsableBytes(size, offset);
        GuaranteedBlocks += ChunksIn(size, offset, chunk);
    }

    /// <summary>The bytes of whole 16-byte granules in a region at a 4 KiB boundary + <paramref name="offset"/>.</summary>
    public static ulong UsableBytes(nuint size, int offset)
    {
        ulong first = ((ulong)offset + 15) & ~15ul;
        ulong end = ((ulong)offset + size) & ~15ul;
        return end > first ? end - first : 0;
    }

    /// <summary>Whole aligned chunks of <paramref name="chunk"/> bytes in such a region, counted low.</summary>
    public static int ChunksIn(nuint size, int offset, ulong chunk) => Math.Max(0, (int)(UsableBytes(size, offset) / chunk) - 1);

    public override string ToString()
        => string.Create(CultureInfo.InvariantCulture, $"{Blocks.Count} live, {AllocatedBytes} allocated of {TotalBytes}");
}
