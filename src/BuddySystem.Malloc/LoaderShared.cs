using System.Runtime.InteropServices;

namespace BuddySystem.Malloc;

/// <summary>
/// What the C loader (native/loader.c, <c>struct loader_shared</c>, the same layout) reads to serve small allocations from
/// its per-thread caches without entering managed code: the reserved range, which orders it caches and how many, the
/// side-table encodings, and the regions' side tables. Written here only: before the loader starts, and for a new region
/// its entry before <see cref="RegionCount"/> (a release store).
/// </summary>
/// <remarks>
/// The loader's caches are <see cref="BuddyHeap.OrderCache"/> stacks (head, count, capacity, batch shift) in thread-local C
/// memory, refilled and flushed in batches by <c>bm_refill</c>/<c>bm_flush</c>, one transition per batch. A block on such a
/// stack has the state <see cref="BuddyHeap.StateCached"/> | order, exactly as in the heap's own thread caches, so every
/// misuse check stays the engine's: a free in C moves "allocated, order k" to "cached" with a compare-exchange, and any
/// other state (a double free, an interior pointer, a large block) goes to the managed free, which names the problem.
/// The idea of a small allocator-private cache in front of the shared heap is tcmalloc's and mimalloc's thread caches.
/// </remarks>
[StructLayout(LayoutKind.Sequential)]
internal unsafe struct LoaderShared
{
    /// <summary>Entries of <see cref="RegionStart"/> and friends: the heap grows by doubling, so 40 reach far past 64 GiB.</summary>
    public const int MaxRegions = 40;

    /// <summary>The loader caches orders 0 to this (blocks of 16 B to 2 KiB): most of a program's allocations.</summary>
    public const int CachedOrders = 7;

    /// <summary>Bytes one order's loader cache may hold before a free flushes half of it.</summary>
    public const int CacheBytesPerOrder = 128 * 1024;

    /// <summary>First byte of the reserved range.</summary>
    public ulong ReserveStart;

    /// <summary>End of the reserved range.</summary>
    public ulong ReserveEnd;

    /// <summary>The highest order the loader caches.</summary>
    public int MaxOrder;

    /// <summary>log2 of the smallest block (16 bytes).</summary>
    public int MinShift;

    /// <summary>State of an allocated block, or'ed with its order.</summary>
    public byte StateAllocated;

    /// <summary>State of a block in a cache, or'ed with its order.</summary>
    public byte StateCached;

    /// <summary>The order bits of an allocated state.</summary>
    public byte OrderMask;

    /// <summary>Unused (alignment).</summary>
    public byte Reserved;

    /// <summary>Regions published so far (the loader reads it with acquire semantics).</summary>
    public int RegionCount;

    /// <summary>Start of each region.</summary>
    public fixed ulong RegionStart[MaxRegions];

    /// <summary>End of each region.</summary>
    public fixed ulong RegionEnd[MaxRegions];

    /// <summary>The side table of each region: one state byte per 16-byte granule from its start.</summary>
    public fixed ulong RegionStates[MaxRegions];
}
