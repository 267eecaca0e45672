using BuddySystem.Diagnostics;

namespace BuddySystem;

/// <summary>
/// A size-class slab allocator over a <see cref="BuddyHeap"/>: small requests are objects cut from slabs that are buddy
/// blocks, large requests are buddy blocks cut to their length. Linux's SLUB on its buddy page allocator, in this
/// project's own design, with the exact misuse detection of <see cref="BuddyHeap"/>; the single-threaded wiring of the
/// buddy core and the size-class tier that <see cref="ConcurrentHeap"/> runs per thread.
/// </summary>
/// <remarks>
/// <para><b>Design.</b> Requests of at most 8 KiB (size and alignment) map to one of 56 size classes (16 to 128 bytes in
/// steps of 16, then eight per doubling: at most 12.5 % waste inside an object). A slab is one buddy block of 4 to 64 KiB
/// (a class's first slabs are small, later ones larger; smaller when the heap has no such block left) holding objects of
/// one class at multiples of the class size; its free objects are linked through their first word, and the list is
/// extended about 4 KiB at a time as the slab is used. A pointer's slab is found in O(1) through a page map, one entry
/// per 1 KiB page of each region (Linux's <c>virt_to_page</c> and compound head): the entry points to the slab's
/// descriptor, or marks the first page of a large block with its length. One state byte per 16-byte granule names the
/// class of the live object starting there. Descriptors, page maps and state bytes live in native memory outside the
/// managed bytes. Each class keeps a list of slabs with free objects; a slab that becomes empty stays while its class
/// holds no other empty slab (hysteresis, so a ping-pong at a slab boundary does not thrash the buddy engine) and
/// otherwise goes back to the buddy engine.</para>
/// <para><b>Large requests</b> take a buddy block of max(next power of two of size, align) bytes and give its unused tail
/// back as smaller buddies at once (Linux's <c>alloc_pages_exact</c>), keeping the size rounded up to 1 KiB.</para>
/// <para><b>Cost.</b> Allocate pops the first slab of its class and stores a state byte (O(1)); Deallocate compares and
/// clears the state byte, reads the page map and pushes (O(1)); neither takes an atomic instruction. Making or returning
/// a slab costs one buddy allocation or free; a large block costs O(orders).</para>
/// <para><b>Misuse.</b> Deallocate checks, before changing anything, that the pointer lies in a region, starts a live
/// object of a slab or a large block, and that the layout maps to its class (or, for a large block, to its length);
/// otherwise it throws, naming the address, with the exceptions and messages of <see cref="BuddyHeap"/>, and the heap is
/// unchanged.</para>
/// <para><b>Thread safety.</b> None: use one thread at a time (any thread; <see cref="ConcurrentHeap"/> is the thread-safe
/// form).</para>
/// </remarks>
public sealed unsafe class SlabHeap : IAllocator, IHeapStatsSource, IDisposable
{
    private const int GranuleShift = 4;

    private readonly BuddyHeap _buddy;
    private readonly SlabTier _tier;
    private readonly SlabTier.ThreadSlabs _owner;
    private readonly List<IDisposable> _ownedRegions = [];
    private bool _disposed;

    /// <summary>Creates an empty heap; give it memory with <see cref="AddRegion(void*, nuint)"/>.</summary>
    public SlabHeap()
    {
        // The slabs are the caching layer: the buddy engine under them merges on every free.
        _buddy = new BuddyHeap(BuddyHeapOptions.Eager);
        _tier = new SlabTier(_buddy, hostLock: null, static _ => false);
        _owner = _tier.SingleOwner;
    }

    /// <summary>
    /// Creates a heap over a new native region of <paramref name="size"/> bytes, aligned to the largest power of two not
    /// above it; the region is freed when the heap is disposed.
    /// </summary>
    /// <param name="size">Bytes to manage; at least 16.</param>
    /// <returns>A heap that owns its memory.</returns>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="size"/> is smaller than 16.</exception>
    /// <exception cref="OutOfMemoryException">The process could not get the memory.</exception>
    public static SlabHeap Create(nuint size)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(size, BuddyHeap.MinBlockSize);
        var heap = new SlabHeap();
        var region = NativeRegion.StartingAsOneBlock(size);
        heap.AddRegion(region.Pointer, region.Size);
        heap._ownedRegions.Add(region);
        heap._buddy.MarkPurgeable(region.Pointer, region.Size);
        return heap;
    }

    /// <summary>The largest request (size and alignment) served as an object of a slab: 8 KiB. Larger requests are exact
    /// large blocks of the buddy engine.</summary>
    public const int MaxSmallSize = SizeClasses.MaxSize;

    /// <summary>The largest slab: 64 KiB. Every object lies inside one slab, a buddy block aligned to its size.</summary>
    public const int MaxSlabSize = 1 << SizeClasses.MaxSlabShift;

    /// <summary>The size classes' object sizes, smallest first (a small request takes the first that fits and aligns).</summary>
    public static IReadOnlyList<int> ClassSizes { get; } = [.. Enumerable.Range(0, SizeClasses.Count).Select(i => (int)SizeClasses.SizeOf(i))];

    /// <summary>The bytes this heap reserves for <paramref name="layout"/>: its class size, or for a large request its size
    /// rounded up to 1 KiB.</summary>
    /// <param name="layout">A request.</param>
    /// <returns>The block size <see cref="HeapStats.AllocatedBytes"/> counts for it.</returns>
    public static ulong BlockSizeFor(Layout layout)
        => SizeClasses.IsSmall(layout.Size, layout.Align) ? SizeClasses.SizeOf(SizeClasses.IndexOf(layout.Size, layout.Align)) : LargeLength(layout.Size);

    /// <summary>The alignment every block for <paramref name="layout"/> is sure to have, whatever its place: for an object,
    /// the lowest set bit of its class size (objects sit at multiples of the class size in slabs aligned to a larger power
    /// of two, so a 320-byte object is 64-aligned); for a large request, the buddy block it is cut from, aligned to its
    /// size. Never below <see cref="Layout.Align"/> (a class is picked whose size is a multiple of it).</summary>
    /// <param name="layout">A request.</param>
    /// <returns>A power of two.</returns>
    public static ulong BlockAlignmentFor(Layout layout)
        => SizeClasses.IsSmall(layout.Size, layout.Align)
            ? 1UL << BitOperations.TrailingZeroCount(SizeClasses.SizeOf(SizeClasses.IndexOf(layout.Size, layout.Align)))
            : 1UL << (Orders.OrderFor(layout.Size, layout.Align, GranuleShift) + GranuleShift);

    /// <summary>A large request's kept length: its size rounded up to 1 KiB.</summary>
    internal static ulong LargeLength(nuint size) => ((ulong)size + (1UL << SlabTier.PageShift) - 1) & ~((1UL << SlabTier.PageShift) - 1);

    /// <summary>The buddy engine under the slabs (read-only use: snapshots and tests).</summary>
    internal BuddyHeap Buddy => _buddy;

    /// <summary>
    /// Adds the memory [<paramref name="start"/>, start + <paramref name="size"/>) to the heap, as
    /// <see cref="BuddyHeap.AddRegion(void*, nuint)"/> does (same rules and exceptions).
    /// </summary>
    /// <param name="start">First byte of the region. The memory must stay valid until the heap is disposed.</param>
    /// <param name="size">Bytes in the region.</param>
    /// <exception cref="ArgumentNullException"><paramref name="start"/> is null.</exception>
    /// <exception cref="ArgumentException">As for <see cref="BuddyHeap.AddRegion(void*, nuint)"/>; the heap is unchanged.</exception>
    /// <exception cref="ObjectDisposedException">The heap was disposed.</exception>
    /// <remarks>Metadata for the region (a page map of 8 bytes per KiB and one byte per 16 bytes) is native memory.</remarks>
    public void AddRegion(void* start, nuint size)
    {
        ThrowIfDisposed();
        _buddy.AddRegion(start, size);
        _tier.AddRegionMetadata(start, size);
    }

    /// <summary>
    /// Allocates an object of the first size class that holds <see cref="Layout.Size"/> bytes aligned to
    /// <see cref="Layout.Align"/> (requests up to 8 KiB), or a large block cut from the buddy engine.
    /// </summary>
    /// <param name="layout">Size and alignment wanted; a zero size gets a unique 16-byte object.</param>
    /// <returns>The block; <see langword="null"/> when neither a slab nor a buddy block can be had, even after returning the empty slabs.</returns>
    /// <exception cref="ObjectDisposedException">The heap was disposed.</exception>
    [MethodImpl(MethodImplOptions.AggressiveInlining | MethodImplOptions.AggressiveOptimization)]
    public void* Allocate(Layout layout)
        => SizeClasses.IsSmall(layout.Size, layout.Align) ? _tier.AllocateSingle(_owner, layout) : _tier.AllocateExact(layout);

    /// <summary>Frees an object or a large block.</summary>
    /// <param name="ptr">A block returned by <see cref="Allocate"/> of this heap.</param>
    /// <param name="layout">A layout that maps to the same size class (or, for a large block, the same length) as the one used to allocate it.</param>
    /// <exception cref="ArgumentNullException"><paramref name="ptr"/> is null.</exception>
    /// <exception cref="ArgumentException"><paramref name="ptr"/> lies outside every region, is not the start of an
    /// object or block, or <paramref name="layout"/> maps to another class. The message names the address; the heap is unchanged.</exception>
    /// <exception cref="InvalidOperationException">The object at <paramref name="ptr"/> is not allocated (a double free);
    /// the message names the address; the heap is unchanged.</exception>
    /// <exception cref="ObjectDisposedException">The heap was disposed.</exception>
    [MethodImpl(MethodImplOptions.AggressiveInlining | MethodImplOptions.AggressiveOptimization)]
    public void Deallocate(void* ptr, Layout layout)
    {
        if (SizeClasses.IsSmall(layout.Size, layout.Align))
        {
            _tier.DeallocateSingle(_owner, ptr, layout);
        }
        else
        {
            _tier.DeallocateExact(_owner, ptr, layout);
        }
    }

    /// <summary>
    /// Resizes a block, in place when it can: an object stays while the new size maps to its class; a large block stays
    /// when the new size is large too and either shrinks (its tail goes back to the buddy engine) or grows into free buddy
    /// blocks that follow it (and its address is aligned as the new size's blocks are). Otherwise a new block is
    /// allocated, the bytes copied, and the old block freed.
    /// </summary>
    /// <param name="ptr">A live block of this heap.</param>
    /// <param name="layout">Its current layout.</param>
    /// <param name="newSize">The new size in bytes.</param>
    /// <returns>The block's address; <see langword="null"/> when it had to move and no block was free (the old block stays live).</returns>
    /// <exception cref="ArgumentException">As for <see cref="Deallocate"/>, or <paramref name="newSize"/> overflows with the alignment.</exception>
    /// <exception cref="InvalidOperationException">As for <see cref="Deallocate"/>.</exception>
    /// <exception cref="ObjectDisposedException">The heap was disposed.</exception>
    public void* Reallocate(void* ptr, Layout layout, nuint newSize)
    {
        ThrowIfDisposed();
        var newLayout = new Layout(newSize, layout.Align);
        if (_tier.TryResizeInPlace(ptr, layout, newSize))
        {
            return ptr;
        }

        void* moved = Allocate(newLayout);
        if (moved != null)
        {
            Buffer.MemoryCopy(ptr, moved, newSize, Math.Min(layout.Size, newSize));
            Deallocate(ptr, layout);
        }

        return moved;
    }

    /// <summary>Returns the empty slabs each class keeps for hysteresis to the buddy engine (an allocation that would fail does it by
    /// itself), then returns the pages of the engine's free blocks of at least 64 KiB to the operating system
    /// (<see cref="BuddyHeap.Trim"/>, at <see cref="BuddyHeapOptions.DefaultPurgeThreshold"/>).</summary>
    /// <remarks>Only the heap's own memory (<see cref="Create"/>) is purged, never memory added with <see cref="AddRegion"/>.</remarks>
    /// <exception cref="ObjectDisposedException">The heap was disposed.</exception>
    public void Trim()
    {
        ThrowIfDisposed();
        _tier.Trim();
        _buddy.Trim();
    }

    /// <summary>False: a SlabHeap is single-threaded (use one thread at a time; <see cref="ConcurrentHeap"/> is the thread-safe
    /// heap).</summary>
    public bool IsThreadSafe => false;

    /// <summary>A snapshot of the heap's accounting.</summary>
    /// <remarks>Costs O(free buddy blocks); not for hot paths. <see cref="HeapStats.AllocatedBytes"/> counts objects at their
    /// class size and large blocks at their kept length; <see cref="HeapStats.CachedBytes"/> is the bytes of slabs not in
    /// live objects (free objects, slab tails, empty slabs), part of <see cref="HeapStats.FreeBytes"/>;
    /// <see cref="HeapStats.FreeBlocksByOrder"/> and <see cref="HeapStats.LargestFreeBlock"/> are the buddy engine's.</remarks>
    /// <exception cref="ObjectDisposedException">The heap was disposed.</exception>
    public HeapStats Stats
    {
        get
        {
            ThrowIfDisposed();
            HeapStats buddy = _buddy.Stats;
            SlabTier.TierTotals tier = Totals();
            ulong allocated = (ulong)tier.ObjectBytes + tier.ExactBytes;
            return buddy with
            {
                UserBytes = (ulong)Math.Clamp(tier.UserBytes, 0, (long)allocated),
                AllocatedBytes = allocated,
                FreeBytes = buddy.TotalBytes - allocated,
                CachedBytes = tier.SlabBytes - (ulong)tier.ObjectBytes,
                MetadataBytes = buddy.MetadataBytes + tier.MetadataBytes,
                LiveBlocks = tier.LiveObjects + tier.ExactBlocks,
                Allocations = tier.Allocations,
                FailedAllocations = tier.FailedAllocations,
            };
        }
    }

    /// <summary>Number of slabs the heap holds now (with live objects or kept empty).</summary>
    /// <exception cref="ObjectDisposedException">The heap was disposed.</exception>
    public long SlabCount
    {
        get
        {
            ThrowIfDisposed();
            return _tier.SlabCount;
        }
    }

    /// <summary>
    /// Checks every invariant and throws <see cref="HeapCorruptionException"/> on the first violation: the buddy engine
    /// validates; every slab's pages point to it; its state bytes mark exactly its live objects; its free list and its live
    /// objects add up to its capacity; each class's lists hold exactly its slabs, with the empty count right; the byte
    /// counts add up, and the buddy engine's allocated bytes are the slabs and the large blocks.
    /// </summary>
    /// <remarks>Costs O(managed bytes / 16). For tests and diagnostics, not for hot paths.</remarks>
    /// <exception cref="HeapCorruptionException">An invariant does not hold; the message says which and where.</exception>
    /// <exception cref="ObjectDisposedException">The heap was disposed.</exception>
    public void Validate()
    {
        ThrowIfDisposed();
        _buddy.Validate();
        _tier.ValidateLocked();
        SlabTier.TierTotals tier = Totals();
        ulong buddyAllocated = _buddy.Stats.AllocatedBytes;
        if (buddyAllocated != tier.SlabBytes + tier.ExactBytes)
        {
            ThrowHelper.ThrowCorruption($"the buddy engine holds {buddyAllocated} allocated bytes, but the slabs are {tier.SlabBytes} bytes and the large blocks {tier.ExactBytes}.");
        }
    }

    /// <summary>
    /// Appends every block in address order, for <see cref="HeapSnapshot.Of(SlabHeap)"/>: the buddy engine's free blocks as
    /// they are; each slab as its objects (live ones <see cref="BlockState.Allocated"/>, free ones and the slab's unused
    /// tail <see cref="BlockState.Cached"/>: free, but only for its class), every piece with the slab's order; each large
    /// block as one allocated block of its kept length with the order of the buddy block it was cut from.
    /// </summary>
    internal void CollectBlocks(ulong baseAddress, List<HeapBlock> blocks, List<HeapSlab> slabs)
    {
        ThrowIfDisposed();
        var buddyBlocks = new List<HeapBlock>();
        _buddy.CollectBlocks(baseAddress, buddyBlocks);
        _tier.ExpandSlabsLocked(baseAddress, buddyBlocks, blocks, slabs);
    }

    /// <summary>Frees the metadata and any region the heap owns (see <see cref="Create"/>). Later calls throw <see cref="ObjectDisposedException"/>.</summary>
    /// <remarks>Calling it more than once is harmless. Memory added with <see cref="AddRegion"/> stays the caller's.</remarks>
    public void Dispose()
    {
        if (_disposed)
        {
            return;
        }

        _disposed = true;

        _tier.Dispose();
        _buddy.Dispose();
        Regions.DisposeOwned(_ownedRegions);
    }

    private SlabTier.TierTotals Totals() => _tier.TotalsForHostLocked(emptySlabsByOrder: null);

    private void ThrowIfDisposed()
    {
        if (_disposed)
        {
            ThrowHelper.ThrowObjectDisposed(this);
        }
    }
}
