namespace BuddySystem;

/// <summary>A consistent snapshot of a <see cref="BuddyTree"/>'s accounting, taken by <see cref="BuddyTree.Stats"/>.</summary>
/// <remarks>All figures are bytes of the managed space [0, capacity) except <see cref="FreeBlocksByOrder"/>,
/// <see cref="LiveBlocks"/> and <see cref="MetadataBytes"/> (bytes of process memory).</remarks>
public sealed record BuddyTreeStats
{
    /// <summary>The capacity given to the constructor.</summary>
    public ulong Capacity { get; init; }

    /// <summary>Bytes that can ever be handed out: the capacity rounded down to a multiple of <see cref="MinBlockSize"/>.</summary>
    public ulong UsableBytes { get; init; }

    /// <summary>Sum of the block sizes of live allocations (requested sizes plus internal fragmentation).</summary>
    public ulong AllocatedBytes { get; init; }

    /// <summary>Bytes in free blocks: <see cref="UsableBytes"/> minus <see cref="AllocatedBytes"/>.</summary>
    public ulong FreeBytes { get; init; }

    /// <summary>Size of the largest block the tree can hand out now (0 when full).</summary>
    public ulong LargestFreeBlock { get; init; }

    /// <summary>Bytes of process memory the tree's metadata takes: one byte per node, 2 × (tree leaves) in all.</summary>
    public ulong MetadataBytes { get; init; }

    /// <summary>Number of live allocations.</summary>
    public long LiveBlocks { get; init; }

    /// <summary>The smallest block: the size of order 0.</summary>
    public ulong MinBlockSize { get; init; }

    /// <summary>
    /// Maximal free blocks per order (order k holds blocks of <c>MinBlockSize &lt;&lt; k</c> bytes): a row of Linux's
    /// <c>/proc/buddyinfo</c>. Its length is the number of orders of the tree.
    /// </summary>
    public IReadOnlyList<long> FreeBlocksByOrder { get; init; } = [];
}
