namespace BuddySystem;

/// <summary>
/// How a <see cref="BuddyHeap"/> trades eager merging for speed: the bounds of its lazy per-order caches.
/// </summary>
/// <remarks>
/// <para>With <see cref="LazyCaches"/> on (the default), a freed block of a small order is parked in a per-order cache
/// instead of being merged with its buddy at once, and an allocation of that order pops the cache; an empty cache is
/// refilled in one batch (one larger block cut into many blocks of the order); while a cache is full, further frees of its
/// order are merged into the buddy lists at once. This is the lazy buddy of Barkley and Lee (1989) and what Linux does with its per-CPU page
/// lists. <see cref="BuddyHeap.Trim"/> returns every cached block, after which the heap is merged exactly as the eager
/// algorithm would have left it.</para>
/// <para>The bound: the cache of order k holds at most <c>max(2, min(CacheCapacity, CacheBytesPerOrder / blockSize(k)))</c>
/// blocks, so with the defaults at most 64 blocks and 64 KiB per order and 255 KiB in all (orders 0 to 8, blocks of
/// 16 bytes to 4 KiB).</para>
/// <para>Defaults: lazy caches on, <see cref="MaxCachedOrder"/> 8, <see cref="CacheCapacity"/> 64,
/// <see cref="CacheBytesPerOrder"/> 64 KiB. Turn the caches off (<see cref="Eager"/>) to run the tutorial's algorithm
/// step by step, for instance to watch every split and merge.</para>
/// </remarks>
public sealed record BuddyHeapOptions
{
    /// <summary>The largest <see cref="MaxCachedOrder"/> allowed: blocks of 512 KiB.</summary>
    public const int MaxCachedOrderLimit = 15;

    /// <summary>The default options: lazy caches on, with the bounds above.</summary>
    public static BuddyHeapOptions Default { get; } = new();

    /// <summary>
    /// The defaults of <see cref="ConcurrentHeap"/>: requests of the size classes (up to 8 KiB) are objects of per-thread
    /// slabs (<see cref="SizeClassSlabs"/>); larger blocks go through per-thread caches up to order 12 (64 KiB blocks),
    /// 1 MiB per order: about 3 MiB per thread at most (orders 10 to 12; the smaller orders are the slabs').
    /// </summary>
    /// <remarks>Every order a thread cannot cache goes through the shared lock, so the bounds are wider than a single heap's:
    /// with the single-heap bounds a mixed workload on two threads spends most of its time on that lock, and with 256 KiB
    /// per order a cache of 64 KiB blocks (4 of them) empties and fills every few calls (docs/benchmarks.md).</remarks>
    public static BuddyHeapOptions ConcurrentDefault { get; } = new() { MaxCachedOrder = 12, CacheBytesPerOrder = 1024 * 1024, SizeClassSlabs = true };

    /// <summary>
    /// <see cref="ConcurrentHeap"/> without its size-class tier: every request a buddy block, through per-thread caches of
    /// every order up to 12, 256 KiB per order (about 1.5 MiB per thread at most): the engine <c>concurrent-heap-buddy</c>,
    /// which shows what the tier adds.
    /// </summary>
    internal static BuddyHeapOptions ConcurrentBuddyOnly { get; } = ConcurrentDefault with { SizeClassSlabs = false, CacheBytesPerOrder = 256 * 1024 };

    /// <summary>The tutorial's algorithm: no caches, every free merges at once.</summary>
    public static BuddyHeapOptions Eager { get; } = new() { LazyCaches = false };

    /// <summary>Whether freed blocks of orders up to <see cref="MaxCachedOrder"/> are parked in per-order caches.</summary>
    public bool LazyCaches { get; init; } = true;

    /// <summary>The highest cached order (block of <c>16 &lt;&lt; MaxCachedOrder</c> bytes); 0 to <see cref="MaxCachedOrderLimit"/>.</summary>
    public int MaxCachedOrder { get; init; } = 8;

    /// <summary>The most blocks one order's cache holds; 2 to 4096.</summary>
    public int CacheCapacity { get; init; } = 64;

    /// <summary>The most bytes one order's cache holds (an order's cache holds at least 2 blocks whatever this says).</summary>
    public int CacheBytesPerOrder { get; init; } = 64 * 1024;

    /// <summary>Opt-in checks against write-after-free, overflows and leaks; <see langword="null"/> (the default) for none.</summary>
    /// <remarks>See <see cref="HeapHardeningOptions"/> for what is checked and what it costs. Used by <see cref="BuddyHeap"/>
    /// and <see cref="LockedHeap"/>; a hardened <see cref="ConcurrentHeap"/> takes its lock on every call.</remarks>
    public HeapHardeningOptions? Hardening { get; init; }

    /// <summary>
    /// Whether a <see cref="ConcurrentHeap"/> serves requests of the size classes (up to 8 KiB, classes at most 12.5 % apart,
    /// as <see cref="SlabHeap.ClassSizes"/>) as objects of per-thread slabs cut from buddy blocks, instead of as buddy blocks
    /// rounded up to a power of two. On in <see cref="ConcurrentDefault"/>; needs <see cref="LazyCaches"/> and no
    /// <see cref="Hardening"/>. <see cref="BuddyHeap"/> and <see cref="LockedHeap"/> ignore it (their size-class form is
    /// <see cref="SlabHeap"/>).
    /// </summary>
    public bool SizeClassSlabs { get; init; }

    /// <summary>
    /// What a <see cref="ConcurrentHeap"/> does with a misuse it finds after the call that made it has returned: the one
    /// case is two threads freeing one object at once, where the owner's free takes no locked instruction and the race
    /// can be seen only at the owner's next allocation or collection of that object, before the object is handed out
    /// again. <see langword="null"/> (the default) fails fast with a message naming the address
    /// (<see cref="Environment.FailFast(string)"/>), as a corrupted heap should; a handler receives the exception that names
    /// it, on the thread that found it, outside every lock, and the heap stays usable when it returns. Every other misuse
    /// still throws at its call, the heap unchanged.
    /// </summary>
    public Action<InvalidOperationException>? LateMisuseHandler { get; init; }

    /// <summary>The default <see cref="PurgeThreshold"/>: 64 KiB.</summary>
    public const long DefaultPurgeThreshold = 64 * 1024;

    /// <summary>The smallest non-zero <see cref="PurgeThreshold"/>: 8 KiB, the smallest block that has a 4 KiB page to return
    /// besides the page holding its free-list links.</summary>
    public const long MinPurgeThreshold = 8 * 1024;

    /// <summary>
    /// The smallest free buddy block, in bytes, whose pages <c>Trim</c> returns to the operating system; 0 turns the purge
    /// off. Otherwise from <see cref="MinPurgeThreshold"/> (8 KiB) up; the default is <see cref="DefaultPurgeThreshold"/> (64 KiB).
    /// </summary>
    /// <remarks>
    /// <para><see cref="BuddyHeap.Trim"/>, <see cref="LockedHeap.Trim"/>, <see cref="SlabHeap.Trim"/> and
    /// <see cref="ConcurrentHeap.Trim"/> first return cached blocks and empty slabs to the buddy lists, merging, and then
    /// give back, with <c>madvise(MADV_DONTNEED)</c> on Linux, every whole page of each free block of at least this many
    /// bytes except the page holding the block's free-list links: resident memory drops at once, and a page touched again
    /// reads as zeros. The allocation and free paths never purge, so a block reused at once costs no system call.</para>
    /// <para>Only memory the heap got itself (<c>Create</c>) or was given as a <see cref="NativeRegion"/> is purged; memory
    /// added by address or as a <see cref="PinnedArrayRegion"/> (the garbage collector's) is left resident. A heap whose
    /// <see cref="Hardening"/> checks writes after free does not purge: its free blocks must keep their poison. Elsewhere
    /// than Linux the purge does nothing.</para>
    /// <para><see cref="SlabHeap"/>, which takes no options, purges at the default threshold.</para>
    /// </remarks>
    public long PurgeThreshold { get; init; } = DefaultPurgeThreshold;

    /// <summary>Throws when a field is out of its range.</summary>
    internal void Validate()
    {
        ArgumentOutOfRangeException.ThrowIfNegative(PurgeThreshold);
        if (PurgeThreshold is > 0 and < MinPurgeThreshold)
        {
            throw new ArgumentOutOfRangeException(nameof(PurgeThreshold), PurgeThreshold, $"The purge threshold is 0 (off) or at least {MinPurgeThreshold} bytes.");
        }

        ArgumentOutOfRangeException.ThrowIfNegative(MaxCachedOrder);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(MaxCachedOrder, MaxCachedOrderLimit);
        ArgumentOutOfRangeException.ThrowIfLessThan(CacheCapacity, 2);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(CacheCapacity, 4096);
        ArgumentOutOfRangeException.ThrowIfNegative(CacheBytesPerOrder);
    }

    /// <summary>The bound of the cache of <paramref name="order"/>, in blocks.</summary>
    internal int CapacityOf(int order, int minShift)
        => Math.Max(2, Math.Min(CacheCapacity, CacheBytesPerOrder >> (order + minShift)));
}
