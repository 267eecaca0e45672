using System.Runtime.InteropServices;

namespace BuddySystem.Malloc;

/// <summary>
/// What the C loader (native/loader.c, <c>struct loader_shared</c>, the same layout) reads to serve small allocations from
/// its per-thread caches of class objects without entering managed code: the reserved range, the size classes, the
/// state encodings, and the regions' metadata. Written here only: before the loader starts, and for a new region its
/// entry before <see cref="RegionCount"/> (a release store).
/// </summary>
/// <remarks>
/// The loader's caches are <see cref="BuddyHeap.OrderCache"/> stacks (head, count, capacity, batch shift) of objects of
/// one size class each, in thread-local C memory, refilled and flushed in batches by <c>bm_refill</c>/<c>bm_flush</c>, one
/// transition per batch. An object on such a stack keeps its class state with <see cref="OutsideCached"/> set (see
/// <see cref="Internals.SlabTier.OutsideCachedBit"/>), so every misuse check stays the engine's: a free in C moves "live,
/// class c" to "cached, class c" with a compare-exchange, and any other state (a double free, an interior pointer, a
/// buddy block) goes to the managed free, which names the problem. The idea of a small allocator-private cache in front
/// of the shared heap is tcmalloc's and mimalloc's thread caches.
/// </remarks>
[StructLayout(LayoutKind.Sequential)]
internal unsafe struct LoaderShared
{
    /// <summary>Entries of <see cref="RegionStart"/> and friends: the heap grows by doubling, so 40 reach far past 64 GiB.</summary>
    public const int MaxRegions = 40;


    /// <summary>Entries of <see cref="ClassSizes"/>: the loader's bound on the number of classes, and one more.</summary>
    public const int MaxClasses = 64;

    /// <summary>Entries of <see cref="ClassOfGranules"/>: one per 16 bytes of request up to 8 KiB, and padding.</summary>
    public const int ClassGranules = 520;

    /// <summary>Bytes a class's loader cache may hold before a free flushes half of it, until its first refill.</summary>
    public const int CacheBytesFirst = 16 * 1024;

    /// <summary>Bytes a class's loader cache may hold at most, after refills have doubled its bound.</summary>
    public const int CacheBytesMost = 128 * 1024;

    /// <summary>First byte of the reserved range.</summary>
    public ulong ReserveStart;

    /// <summary>End of the reserved range.</summary>
    public ulong ReserveEnd;

    /// <summary>Number of size classes (at most 63, the loader's bound): a live object's state byte is 1 + its class.</summary>
    public int ClassCount;

    /// <summary>The largest request the classes serve (larger ones enter managed code).</summary>
    public int ClassMaxSize;

    /// <summary>log2 of the granule a state byte describes (16 bytes).</summary>
    public int MinShift;

    /// <summary>log2 of the page a page-map entry describes (1 KiB).</summary>
    public int PageShift;

    /// <summary>The core's state of an allocated buddy block, or'ed with its order.</summary>
    public byte StateAllocated;

    /// <summary>The order bits of a core state.</summary>
    public byte OrderMask;

    /// <summary>The bit of an object's state while it waits in a loader cache.</summary>
    public byte OutsideCached;

    /// <summary>Unused (alignment).</summary>
    public byte Reserved;

    /// <summary>Regions published so far (the loader reads it with acquire semantics).</summary>
    public int RegionCount;

    /// <summary>Start of each region.</summary>
    public fixed ulong RegionStart[MaxRegions];

    /// <summary>End of each region.</summary>
    public fixed ulong RegionEnd[MaxRegions];

    /// <summary>The core's side table of each region: one state byte per 16-byte granule from its start.</summary>
    public fixed ulong RegionStates[MaxRegions];

    /// <summary>The size-class tier's state bytes of each region: one per 16-byte granule from its start.</summary>
    public fixed ulong RegionObjects[MaxRegions];

    /// <summary>The size-class tier's page map of each region: one entry per 1 KiB page from its start.</summary>
    public fixed ulong RegionPages[MaxRegions];

    /// <summary>The size-class tier's remote marks of each region: one per 16-byte granule from its start.</summary>
    public fixed ulong RegionMarks[MaxRegions];

    /// <summary>The object size of each class (a realloc in the loader keeps an object whose class still fits).</summary>
    public fixed uint ClassSizes[MaxClasses];

    /// <summary>The class of a request of up to 8 KiB, indexed by (size + 15) / 16.</summary>
    public fixed byte ClassOfGranules[ClassGranules];

    /// <summary>The byte offset of the owner's id in a slab descriptor (a page-map entry points to the descriptor).</summary>
    public int SlabOwnerOffset;

    /// <summary>The byte offset of the thread-free list's head in a slab descriptor (the loader's free from another thread
    /// pushes there).</summary>
    public int SlabThreadFreeOffset;

    /// <summary>The byte offset of the "full" flag in a slab descriptor.</summary>
    public int SlabFullOffset;
}
