namespace BuddySystem;

/// <summary>A consistent snapshot of a pointer heap's accounting, taken by <c>Stats</c>.</summary>
/// <remarks>All figures are bytes except <see cref="FreeBlocksByOrder"/> and <see cref="LiveBlocks"/>.</remarks>
public sealed record HeapStats
{
    /// <summary>Sum of the requested sizes of live blocks (as passed to Allocate, Reallocate and Deallocate).</summary>
    /// <remarks>The heaps store no requested size: a block may be freed with any layout of the same block size, and the
    /// size passed to Deallocate is what is subtracted. The figure is exact when frees pass the size used to allocate.</remarks>
    public ulong UserBytes { get; init; }

    /// <summary>Sum of the block sizes of live blocks: <see cref="UserBytes"/> plus internal fragmentation.</summary>
    public ulong AllocatedBytes { get; init; }

    /// <summary>Bytes under management: every byte added by AddRegion that can hold a block.</summary>
    public ulong TotalBytes { get; init; }

    /// <summary>Bytes held in free blocks, including blocks parked in caches.</summary>
    public ulong FreeBytes { get; init; }

    /// <summary>Bytes held by free blocks parked in the lazy caches (a part of <see cref="FreeBytes"/>).</summary>
    public ulong CachedBytes { get; init; }

    /// <summary>Bytes of metadata the heap allocated for itself, outside the managed regions.</summary>
    public ulong MetadataBytes { get; init; }

    /// <summary>Size of the largest block that the buddy lists can hand out now.</summary>
    public ulong LargestFreeBlock { get; init; }

    /// <summary>Number of live (allocated) blocks.</summary>
    public long LiveBlocks { get; init; }

    /// <summary>Number of allocations served since the heap was created.</summary>
    public long Allocations { get; init; }

    /// <summary>Number of allocations that returned null since the heap was created.</summary>
    public long FailedAllocations { get; init; }

    /// <summary>The smallest block size: the size of order 0.</summary>
    public ulong MinBlockSize { get; init; }

    /// <summary>Bytes of the pages that hold the heap's memory and are resident in RAM now, counted with <c>mincore(2)</c> over
    /// its regions (Linux; 0 elsewhere, and on engines that do not count it): it falls when <c>Trim()</c> gives the pages of
    /// free blocks back, where <see cref="FreeBytes"/> does not change.</summary>
    public ulong ResidentBytes { get; init; }

    /// <summary>Free blocks in the buddy lists per order (order k holds blocks of <c>MinBlockSize &lt;&lt; k</c> bytes): a row of Linux's <c>/proc/buddyinfo</c>.</summary>
    public IReadOnlyList<long> FreeBlocksByOrder { get; init; } = [];
}

/// <summary>An allocator that can report <see cref="HeapStats"/>; used to explain failures and by diagnostics.</summary>
public interface IHeapStatsSource
{
    /// <summary>A snapshot of the allocator's accounting.</summary>
    HeapStats Stats { get; }
}
