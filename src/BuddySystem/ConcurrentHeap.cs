namespace BuddySystem;

/// <summary>
/// A thread-safe buddy heap for many threads: per-thread caches of free blocks in front of one shared
/// <see cref="BuddyHeap"/> core, the way Linux puts per-CPU page lists in front of its zone's buddy lists.
/// </summary>
/// <remarks>
/// <para><b>Design.</b> Each thread that uses the heap gets its own bounded LIFO cache per small order (orders up to
/// <see cref="BuddyHeapOptions.MaxCachedOrder"/>, bounds as in <see cref="BuddyHeapOptions"/>, per thread). An allocation of a
/// cached order pops the calling thread's cache without any lock; an empty cache is refilled under the core's lock with one
/// batch (one larger block cut into many). A free parks the block in the calling thread's cache (whichever thread allocated
/// it: a free from another thread is an ordinary free); a full cache returns half of its blocks to the core under the lock,
/// merging. Larger orders go straight to the core under the lock. The core is an eager <see cref="BuddyHeap"/>; every
/// block's state lives in its side table, which is how frees are checked exactly.</para>
/// <para><b>Checks on the fast path.</b> A free is taken lock-free only when the pointer is 16-aligned inside a region and a
/// compare-exchange turns its side-table state byte from "allocated, of exactly the order the layout maps to" into "cached".
/// Everything else goes under the lock, where <see cref="BuddyHeap.Deallocate"/>'s checks run and throw, naming the address,
/// before anything changes: null, an address outside every region, an interior address, a double free, a layout of another
/// block size. Because the state changes by compare-exchange on both paths, of two frees of one block racing on two threads
/// exactly one succeeds and the other throws.</para>
/// <para><b>Reaching into other threads' caches.</b> A thread's fast path runs between two plain stores to a flag of its
/// cache ("busy") and first reads a second flag ("paused"). Under the lock, another thread pauses caches by setting their
/// paused flags, issuing one process-wide memory barrier (<see cref="Interlocked.MemoryBarrierProcessWide"/>) and waiting
/// until none is busy; from then until it resumes them, their owners take the locked path, so the caches can be read or
/// emptied safely (an asymmetric Dekker handshake: the owners pay no atomic instruction for it). That is how an
/// allocation that would fail, <see cref="Trim"/>, <see cref="Stats"/>, <see cref="Validate"/> and <see cref="Dispose"/>
/// see every thread's cache.</para>
/// <para><b>Bounds and reclaiming.</b> A thread's caches hold at most the sum of the per-order bounds of the options (about
/// 3 MiB with <see cref="BuddyHeapOptions.ConcurrentDefault"/>). No cached byte is stranded: an allocation that would fail
/// and <see cref="Trim"/> return the caches of every thread, live or exited, to the core; exited threads' caches are also
/// returned when a new thread first uses the heap and by <see cref="Stats"/>; and after each full (generation 2) garbage
/// collection the caches of threads that have not allocated since the previous one are returned, when other threads did (as
/// <c>ArrayPool&lt;T&gt;.Shared</c> trims on its Gen2 callback).</para>
/// <para><b>Thread safety.</b> Every member is safe from any thread. <see cref="Dispose"/> waits for calls in progress on the
/// fast paths and makes every later call throw <see cref="ObjectDisposedException"/>; blocks still held by other threads
/// become invalid with the memory (their owners must not use them after disposing the heap). A heap dropped without
/// <see cref="Dispose"/> is not kept alive by the threads that used it: the garbage collector frees a region it owns (see
/// <see cref="Create"/>), but its metadata only <see cref="Dispose"/> frees.</para>
/// </remarks>
public sealed unsafe partial class ConcurrentHeap : IAllocator, IHeapStatsSource, IExhaustionInfoSource, IDisposable
{
    // The cache of the heap this thread used last: one thread-static read finds it on the fast path.
    [ThreadStatic]
    private static ThreadCache? t_cache;

    private readonly Lock _lock = new();

    // What a thread's cache names as its heap (ThreadCache.HeapKey): an object of its own, so that the thread-static
    // holding the cache does not keep a heap its owner dropped without disposing alive (its trimmer then stops).
    private readonly object _threadKey = new();
    private readonly BuddyHeap _core;
    private readonly BuddyHeapOptions _options;
    private readonly ThreadLocal<ThreadCache?> _cacheOfThread = new();
    private readonly List<ThreadCache> _caches = [];
    private readonly Action<BuddyHeap, Layout>? _rescue;

    // The size-class tier (BuddyHeapOptions.SizeClassSlabs): per-thread slabs cut from the core's blocks under the same
    // lock; null when off, hardened or uncached.
    private readonly SlabTier? _tier;

    // -1 when the thread caches are off or the heap is disposed: every call then goes under the lock.
    private int _maxCachedOrder;
    private volatile bool _disposed;

    // Counters folded in from the caches of exited threads, and failures of cached orders; under the lock.
    private OwnerCounters _retired;
    private long _failedAllocations;
    private long _allocationsAtLastTrim;

    // Whether the Gen2 trimmer has given back the memory of this heap since it was last used (it does so once per idle spell).
    private bool _purgedWhileIdle;

    /// <summary>Creates an empty heap; give it memory with <see cref="AddRegion(void*, nuint)"/>.</summary>
    /// <param name="options">The per-thread cache bounds; <see langword="null"/> for <see cref="BuddyHeapOptions.ConcurrentDefault"/>.
    /// With <see cref="BuddyHeapOptions.LazyCaches"/> off every call takes the lock (a <see cref="LockedHeap"/> that merges eagerly).
    /// With <see cref="BuddyHeapOptions.Hardening"/> set every call takes the lock too and runs the hardened core's checks
    /// (poison, canaries, leak report): the thread caches would hand out and take back blocks without them.</param>
    /// <param name="rescue">Called under the lock when an allocation fails even after every thread's cached blocks went back
    /// to the core (the crate's <c>LockedHeapWithRescue</c>); it may add memory with <see cref="BuddyHeap.AddRegion(void*, nuint)"/>
    /// and must not call this heap. The allocation is then tried once more.</param>
    /// <exception cref="ArgumentOutOfRangeException">An option is out of its documented range.</exception>
    public ConcurrentHeap(BuddyHeapOptions? options = null, Action<BuddyHeap, Layout>? rescue = null)
    {
        _options = options ?? BuddyHeapOptions.ConcurrentDefault;
        _options.Validate();
        _rescue = rescue;
        _core = new BuddyHeap(BuddyHeapOptions.Eager with { Hardening = _options.Hardening, PurgeThreshold = _options.PurgeThreshold });
        _maxCachedOrder = _options.LazyCaches && _options.Hardening == null ? _options.MaxCachedOrder : -1;
        if (_options.SizeClassSlabs && _maxCachedOrder >= 0)
        {
            _tier = new SlabTier(_core, _lock, layout => ReturnCachesForRetryLocked() || RescueLocked(layout), _options.LateMisuseHandler);
        }

        if (_maxCachedOrder >= 0)
        {
            Gen2Trimmer.Start(this);
        }
    }

    /// <summary>Creates a heap over a new native region of <paramref name="size"/> bytes (see <see cref="BuddyHeap.Create"/>).</summary>
    /// <param name="size">Bytes to manage; at least <see cref="BuddyHeap.MinBlockSize"/>.</param>
    /// <param name="options">The per-thread cache bounds and hardening; <see langword="null"/> for <see cref="BuddyHeapOptions.ConcurrentDefault"/>.</param>
    /// <param name="rescue">Optional rescue callback (see the constructor).</param>
    /// <returns>A heap that owns its memory; disposing it frees the memory.</returns>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="size"/> is too small or an option is out of range.</exception>
    public static ConcurrentHeap Create(nuint size, BuddyHeapOptions? options = null, Action<BuddyHeap, Layout>? rescue = null)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(size, BuddyHeap.MinBlockSize);
        var heap = new ConcurrentHeap(options, rescue);
        NativeRegion region = heap._core.AddOwnedRegion(size);
        heap._tier?.AddRegionMetadata(region.Pointer, region.Size);
        return heap;
    }

    /// <summary>The per-thread cache bounds the heap was created with.</summary>
    public BuddyHeapOptions Options => _options;

    /// <summary>Whether requests of the size classes are served as slab objects (<see cref="BuddyHeapOptions.SizeClassSlabs"/>,
    /// without hardening).</summary>
    internal bool HasSizeClassTier => _tier != null;

    /// <summary>The buddy core (read-only use outside the lock: its regions' bounds, for tests).</summary>
    internal BuddyHeap Core => _core;

    /// <summary>The bytes this heap reserves for <paramref name="layout"/>: with the size-class tier, a request of the classes
    /// gets an object of its class (<see cref="SlabHeap.BlockSizeFor"/>); any other gets a buddy block
    /// (<see cref="BuddyHeap.BlockSizeFor"/>, which adds a hardened heap's overhead).</summary>
    /// <param name="layout">A request.</param>
    /// <returns>The block size <see cref="HeapStats.AllocatedBytes"/> counts for it.</returns>
    /// <exception cref="ArgumentOutOfRangeException">No block can be that large.</exception>
    public ulong BlockSizeFor(Layout layout)
        => _tier != null && SizeClasses.IsSmall(layout.Size, layout.Align) ? SlabHeap.BlockSizeFor(layout) : _core.BlockSizeFor(layout);

    /// <summary>The alignment every block for <paramref name="layout"/> is sure to have: an object's as
    /// <see cref="SlabHeap.BlockAlignmentFor"/> says, a buddy block's its size.</summary>
    /// <param name="layout">A request.</param>
    /// <returns>A power of two.</returns>
    /// <exception cref="ArgumentOutOfRangeException">No block can be that large.</exception>
    public ulong BlockAlignmentFor(Layout layout)
        => _tier != null && SizeClasses.IsSmall(layout.Size, layout.Align) ? SlabHeap.BlockAlignmentFor(layout) : _core.BlockSizeFor(layout);

    /// <summary>Slabs the size-class tier holds now (owned by threads, kept empty or abandoned); 0 without the tier.</summary>
    internal long SlabCount => _tier?.SlabCount ?? 0;

    /// <summary>Whether this heap runs the checks of <see cref="BuddyHeapOptions.Hardening"/> (every call then takes the lock).</summary>
    public bool IsHardened => _core.IsHardened;

    /// <summary>Bytes added to every request before its block is chosen: 16 when hardened with overflow checks, else 0
    /// (see <see cref="BuddyHeap.RequestOverhead"/>).</summary>
    public int RequestOverhead => _core.RequestOverhead;

    /// <summary>Adds memory under the lock; see <see cref="BuddyHeap.AddRegion(void*, nuint)"/>.</summary>
    /// <param name="start">First byte; must stay valid until the heap is disposed (nothing keeps its owner alive).</param>
    /// <param name="size">Bytes.</param>
    public void AddRegion(void* start, nuint size)
    {
        lock (_lock)
        {
            ThrowIfDisposed();
            _core.AddRegion(start, size);
            _tier?.AddRegionMetadata(start, size);
        }
    }

    /// <summary>Adds all of <paramref name="region"/> under the lock and keeps it reachable; see <see cref="BuddyHeap.AddRegion(NativeRegion)"/>.</summary>
    /// <param name="region">Native memory, the caller's to dispose after the heap.</param>
    public void AddRegion(NativeRegion region)
    {
        lock (_lock)
        {
            ThrowIfDisposed();
            _core.AddRegion(region);
            _tier?.AddRegionMetadata(region.Pointer, (nuint)region.Size);
        }
    }

    /// <summary>Adds all of <paramref name="region"/> under the lock and keeps its array reachable; see <see cref="BuddyHeap.AddRegion(PinnedArrayRegion)"/>.</summary>
    /// <param name="region">A region of a pinned array.</param>
    public void AddRegion(PinnedArrayRegion region)
    {
        lock (_lock)
        {
            ThrowIfDisposed();
            _core.AddRegion(region);
            _tier?.AddRegionMetadata(region.Pointer, (nuint)region.Size);
        }
    }

    /// <summary>Allocates a block as <see cref="BuddyHeap.Allocate"/> does; safe from any thread.</summary>
    /// <param name="layout">Size and alignment wanted.</param>
    /// <returns>The block; <see langword="null"/> when no free block is large enough, even after returning every thread's
    /// cached blocks to the core.</returns>
    /// <exception cref="ObjectDisposedException">The heap was disposed.</exception>
    /// <remarks>Fast path (a cached order whose cache is not empty): one thread-static read, the busy/paused handshake, a pop,
    /// one side-table write and four counter updates in the thread's own cache; no lock, no atomic instruction. Compiled
    /// optimized from the first call (no tier-0 code), so that a short-lived program does not pay for the JIT's warm-up.</remarks>
    [MethodImpl(MethodImplOptions.AggressiveInlining | MethodImplOptions.AggressiveOptimization)]
    public void* Allocate(Layout layout)
    {
        SlabTier? tier = _tier;
        if (tier != null && SizeClasses.IsSmall(layout.Size, layout.Align))
        {
            return tier.Allocate(layout);
        }

        return AllocateBlock(layout);
    }

    /// <summary>A buddy block (requests above the size classes, or every request without the tier): the thread's cache
    /// of its order, else the core under the lock. Not inlined into <see cref="Allocate"/>, so that the objects' fast path
    /// keeps a small frame.</summary>
    [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
    private void* AllocateBlock(Layout layout)
    {
        int order = Orders.OrderFor(layout.Size, layout.Align, BuddyHeap.MinShift);
        ThreadCache? cache = t_cache;
        if (order <= _maxCachedOrder && cache != null && cache.HeapKey == _threadKey)
        {
            BuddyHeap.OrderCache* orderCache = cache.Caches + order;
            cache.EnterBusy();
            if (!cache.IsPaused && orderCache->Head != null)
            {
                BuddyHeap.CachedBlock* block = orderCache->Pop();
                *cache.StateOf((ulong)block, _core) = (byte)(BuddyHeap.StateAllocated | order);
                cache.CountAllocation((ulong)BuddyHeap.MinBlockSize << order, layout.Size);
                cache.ExitBusy();
                return block;
            }

            cache.ExitBusy();
        }

        return AllocateSlow(layout, order);
    }

    [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
    private void* AllocateSlow(Layout layout, int order)
    {
        if (order > _maxCachedOrder)
        {
            lock (_lock)
            {
                ThrowIfDisposed();
                void* block = _core.Allocate(layout);
                if (block == null && ReturnCachesForRetryLocked())
                {
                    // The core counted the first try as a failure; the call as a whole fails at most once, and not at all
                    // when the retry succeeds.
                    _failedAllocations--;
                    block = _core.Allocate(layout);
                }

                if (block == null && _rescue != null)
                {
                    _failedAllocations--;
                    _rescue(_core, layout);
                    block = _core.Allocate(layout);
                }

                return block;
            }
        }

        ThreadCache cache = CurrentCache();
        BuddyHeap.OrderCache* orderCache = cache.Caches + order;
        lock (_lock)
        {
            ThrowIfDisposed();
            if (orderCache->Head == null && !_core.RefillCache(orderCache, order) &&
                !(ReturnCachesForRetryLocked() && _core.RefillCache(orderCache, order)) &&
                !(RescueLocked(layout) && _core.RefillCache(orderCache, order)))
            {
                _failedAllocations++;
                return null;
            }

            BuddyHeap.CachedBlock* taken = orderCache->Pop();
            *cache.StateOf((ulong)taken, _core) = (byte)(BuddyHeap.StateAllocated | order);
            cache.CountAllocation((ulong)BuddyHeap.MinBlockSize << order, layout.Size);
            return taken;
        }
    }

    /// <summary>Frees a block with the checks of <see cref="BuddyHeap.Deallocate"/>; safe from any thread, whichever thread allocated it.</summary>
    /// <param name="ptr">A live block of this heap.</param>
    /// <param name="layout">A layout that maps to the block's size.</param>
    /// <exception cref="ArgumentNullException"><paramref name="ptr"/> is null.</exception>
    /// <exception cref="ArgumentException"><paramref name="ptr"/> is outside every region or not the start of a block, or
    /// <paramref name="layout"/> maps to another block size; the heap is unchanged.</exception>
    /// <exception cref="InvalidOperationException">The block is not allocated (a double free, also when two threads free it
    /// at once: exactly one of them succeeds); the heap is unchanged.</exception>
    /// <exception cref="ObjectDisposedException">The heap was disposed.</exception>
    /// <remarks>Fast path: one compare-exchange on the side-table state byte ("allocated, of the layout's order" to "cached",
    /// see the class remarks), then the block is pushed on the calling thread's cache; no lock unless the cache is full. An
    /// object of the size classes: the tier's free (<see cref="SlabTier.Deallocate"/>), with no atomic instruction when the
    /// calling thread owns its slab. Compiled optimized from the first call.</remarks>
    [MethodImpl(MethodImplOptions.AggressiveInlining | MethodImplOptions.AggressiveOptimization)]
    public void Deallocate(void* ptr, Layout layout)
    {
        // An object goes to its slab whatever the layout says (the tier then names a wrong layout): a slab is a live block
        // of the core, so only the page map can tell a slab object from a block.
        SlabTier? tier = _tier;
        if (tier != null && (SizeClasses.IsSmall(layout.Size, layout.Align) || tier.HoldsInSlab(ptr)))
        {
            tier.Deallocate(ptr, layout);
            return;
        }

        DeallocateBlock(ptr, layout);
    }

    /// <summary>Frees a buddy block: into the thread's cache of its order with one compare-exchange, else under the lock.
    /// Not inlined into <see cref="Deallocate(void*, Layout)"/>, so that the objects' fast path keeps a small frame.</summary>
    [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
    private void DeallocateBlock(void* ptr, Layout layout)
    {
        int order = Orders.OrderFor(layout.Size, layout.Align, BuddyHeap.MinShift);
        ThreadCache? cache = t_cache;
        if (order <= _maxCachedOrder && cache != null && cache.HeapKey == _threadKey)
        {
            // The region the thread used last, copied into its cache: no load through the core on the fast path.
            ulong offset = (ulong)ptr - cache.HotStart;
            BuddyHeap.OrderCache* orderCache = cache.Caches + order;
            if (offset < cache.HotLength && (offset & ((ulong)BuddyHeap.MinBlockSize - 1)) == 0 && orderCache->Count < orderCache->Capacity)
            {
                byte* state = cache.HotStates + (offset >> BuddyHeap.MinShift);
                byte allocated = (byte)(BuddyHeap.StateAllocated | order);
                cache.EnterBusy();
                if (!cache.IsPaused && Interlocked.CompareExchange(ref *state, (byte)(BuddyHeap.StateCached | order), allocated) == allocated)
                {
                    orderCache->Push(ptr);
                    cache.CountFree((ulong)BuddyHeap.MinBlockSize << order, layout.Size);
                    cache.ExitBusy();
                    return;
                }

                cache.ExitBusy();
            }
        }

        DeallocateSlow(ptr, layout, order);
    }

    [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
    private void DeallocateSlow(void* ptr, Layout layout, int order)
    {
        if (order > _maxCachedOrder)
        {
            lock (_lock)
            {
                ThrowIfDisposed();
                _core.Deallocate(ptr, layout);
            }

            return;
        }

        ThreadCache cache = CurrentCache();
        BuddyHeap.OrderCache* orderCache = cache.Caches + order;
        lock (_lock)
        {
            ThrowIfDisposed();
            _core.CheckLiveBlock(ptr, layout, out _);
            byte* state = cache.StateOf((ulong)ptr, _core);
            byte allocated = (byte)(BuddyHeap.StateAllocated | order);
            if (Interlocked.CompareExchange(ref *state, (byte)(BuddyHeap.StateCached | order), allocated) != allocated)
            {
                // Another thread's lock-free free took the block between the check and here: this one is the double free.
                _core.CheckLiveBlock(ptr, layout, out _);
            }

            if (orderCache->Count >= orderCache->Capacity)
            {
                _core.FlushCache(orderCache, order, orderCache->Capacity >> 1);
            }

            orderCache->Push(ptr);
            cache.CountFree((ulong)BuddyHeap.MinBlockSize << order, layout.Size);
        }
    }

    /// <summary>Resizes a block as <see cref="BuddyHeap.Reallocate"/> does (in place when the block size stays, and, for blocks
    /// above the thread caches' orders, when it shrinks or its buddies above are free); safe from any thread.</summary>
    /// <param name="ptr">A live block of this heap.</param>
    /// <param name="layout">Its current layout.</param>
    /// <param name="newSize">The new size in bytes.</param>
    /// <returns>The block's address; <see langword="null"/> when it had to move and no block was free (the old block stays live).</returns>
    /// <exception cref="ArgumentException">As for <see cref="Deallocate(void*, Layout)"/>, or <paramref name="newSize"/> overflows with the alignment.</exception>
    /// <exception cref="InvalidOperationException">As for <see cref="Deallocate(void*, Layout)"/>.</exception>
    /// <exception cref="ObjectDisposedException">The heap was disposed.</exception>
    public void* Reallocate(void* ptr, Layout layout, nuint newSize)
    {
        _ = new Layout(newSize, layout.Align); // validates the new size with the alignment before anything changes
        SlabTier? tier = _tier;
        if (tier != null)
        {
            bool toObject = SizeClasses.IsSmall(newSize, layout.Align);
            if (SizeClasses.IsSmall(layout.Size, layout.Align) || tier.HoldsInSlab(ptr))
            {
                // An object stays while the new size maps to its class (the tier checks the call first); else it moves.
                return tier.TryResizeInPlace(ptr, layout, newSize) ? ptr : Moves.AllocateCopyFree(this, ptr, layout, newSize);
            }

            if (toObject)
            {
                // A block whose new size is a class's moves into a slab, where its free by the new layout will look for it.
                lock (_lock)
                {
                    ThrowIfDisposed();
                    _core.CheckLiveBlock(ptr, layout, out _);
                }

                return Moves.AllocateCopyFree(this, ptr, layout, newSize);
            }
        }

        ThreadCache? cache = _maxCachedOrder >= 0 ? CurrentCache() : null;
        lock (_lock)
        {
            ThrowIfDisposed();
            // Without thread caches every block is the core's own, and the core checks the call by its own rules (a
            // hardened core adds its overhead to the layout first).
            int order = _maxCachedOrder < 0 ? -1 : _core.CheckLiveBlock(ptr, layout, out _);
            int newOrder = Orders.OrderFor(newSize, layout.Align, BuddyHeap.MinShift);
            if (_maxCachedOrder < 0 || (order > _maxCachedOrder && newOrder > _maxCachedOrder))
            {
                // Both sizes are the core's own (no thread cache counts them): the core resizes in place when it can.
                void* resized = _core.Reallocate(ptr, layout, newSize);
                if (resized == null && ReturnCachesForRetryLocked())
                {
                    // As in Allocate: memory parked in thread caches must not make a reallocation fail.
                    _failedAllocations--;
                    resized = _core.Reallocate(ptr, layout, newSize);
                }

                return resized;
            }

            if (newOrder == order)
            {
                cache!.UserBytes += (long)newSize - (long)layout.Size;
                return ptr;
            }
        }

        return Moves.AllocateCopyFree(this, ptr, layout, newSize);
    }

    /// <summary>
    /// Returns every thread's cached blocks (live threads and exited ones) and every empty slab to the core, merging, then
    /// returns the pages of the core's free blocks of at least <see cref="BuddyHeapOptions.PurgeThreshold"/> bytes to the
    /// operating system (see <see cref="BuddyHeap.Trim"/>). With no live block the heap is then fully merged, and of its
    /// own memory only the first page of each free block stays resident.
    /// </summary>
    /// <remarks>Pauses the other threads' caches for the moment it takes (see the class remarks); they refill on their next
    /// allocation. The purge runs under the lock, after the caches are back: no thread can take a block from the core
    /// meanwhile.</remarks>
    /// <exception cref="ObjectDisposedException">The heap was disposed.</exception>
    public void Trim()
    {
        lock (_lock)
        {
            ThrowIfDisposed();
            TrimLocked();
        }

        _tier?.ReportLateMisuses();
    }

    /// <summary><see cref="Trim"/>'s work, under the lock: every thread's caches and empty slabs back to the core, whose
    /// large free blocks are purged.</summary>
    private void TrimLocked()
    {
        ReclaimExitedLocked();
        ReturnAllCachesLocked();
        _tier?.Trim();
        _core.Trim();
    }

    /// <summary>A snapshot of the accounting: the core's buddy lists plus every thread's cache and counters.</summary>
    /// <remarks>Consistent within one read: every thread's cache is paused while it is read (see the class remarks), so the
    /// figures are those of one moment and <c>AllocatedBytes + FreeBytes == TotalBytes</c>. Returns the caches of exited threads
    /// first. <see cref="HeapStats.FreeBlocksByOrder"/> and <see cref="HeapStats.LargestFreeBlock"/> count the cached blocks
    /// of every thread as the blocks they merge into, since an allocation that would fail returns them all.</remarks>
    /// <exception cref="ObjectDisposedException">The heap was disposed.</exception>
    public HeapStats Stats
    {
        get
        {
            lock (_lock)
            {
                ThrowIfDisposed();
                ReclaimExitedLocked();
                _tier?.ReclaimExitedLocked(); // exited threads' empty slabs go back to the core before it is read
                PausableOwner.PauseAll(_caches);
                try
                {
                    var byOrder = new long[BuddyHeap.MaxOrder + 1];
                    _core.CountFreeLists(byOrder);
                    List<nint>?[] cached = CollectCachedLocked();
                    SlabTier.TierTotals? tier = _tier?.TotalsForHostLocked(cached); // empty slabs merge like cached blocks
                    _core.MergeCachedInto(byOrder, cached);
                    Totals totals = SumCountersLocked();
                    HeapStats merged = _core.StatsOf(byOrder, totals.CachedBytes, 0, 0, 0, 0, 0);
                    ulong allocated = merged.TotalBytes - Math.Min(merged.TotalBytes, merged.FreeBytes);
                    ulong metadata = merged.MetadataBytes;
                    if (tier is { } slabs)
                    {
                        // The core counts each slab as one allocated block of its size (an empty one already as the free
                        // block it merges into); the heap counts the slab's objects: live ones allocated, free ones cached
                        // (they serve only their class).
                        allocated = allocated - (slabs.SlabBytes - slabs.EmptySlabBytes) + (ulong)slabs.ObjectBytes;
                        totals.CachedBytes += slabs.SlabBytes - (ulong)slabs.ObjectBytes;
                        totals.UserBytes += slabs.UserBytes - (long)slabs.SlabBytes;
                        totals.LiveBlocks += slabs.LiveObjects - slabs.Slabs;
                        totals.Allocations += slabs.Allocations - slabs.SlabsTaken;
                        totals.FailedAllocations += slabs.FailedAllocations - slabs.SlabTakeFailures;
                        metadata += slabs.MetadataBytes;
                    }

                    return merged with
                    {
                        AllocatedBytes = allocated,
                        FreeBytes = merged.TotalBytes - allocated,
                        CachedBytes = totals.CachedBytes,
                        MetadataBytes = metadata,
                        UserBytes = (ulong)Math.Clamp(totals.UserBytes, 0, (long)allocated),
                        LiveBlocks = Math.Clamp(totals.LiveBlocks, 0, (long)(allocated >> BuddyHeap.MinShift)),
                        Allocations = totals.Allocations,
                        FailedAllocations = totals.FailedAllocations,
                    };
                }
                finally
                {
                    PausableOwner.ResumeAll(_caches);
                }
            }
        }
    }

    (ulong FreeBytes, ulong LargestFreeBlock) IExhaustionInfoSource.ExhaustionInfo()
    {
        if (_tier != null)
        {
            // Slabs are allocated blocks to the core but mostly free bytes to the heap: only the full reckoning says which.
            HeapStats stats = Stats;
            return (stats.FreeBytes, stats.LargestFreeBlock);
        }

        lock (_lock)
        {
            ThrowIfDisposed();
            PausableOwner.PauseAll(_caches);
            try
            {
                // A failed allocation has just returned every cache, so the caches walked here are short; no buddy list is walked.
                int highest = _core.MergeCachedInto(null, CollectCachedLocked());
                Totals totals = SumCountersLocked();
                ulong total = _core.ManagedBytes;
                ulong free = total - (ulong)Math.Clamp(totals.AllocatedBytes, 0, (long)total);
                return (free, highest < 0 ? 0 : (ulong)BuddyHeap.MinBlockSize << highest);
            }
            finally
            {
                PausableOwner.ResumeAll(_caches);
            }
        }
    }

    /// <summary>
    /// Checks every invariant of <see cref="BuddyHeap.Validate"/> on the core, plus every thread's caches (each cached block
    /// marked cached of its order, counts and bounds), and that the side table's allocated blocks match all counters.
    /// </summary>
    /// <remarks>Safe while other threads use the heap: their caches are paused while it runs. Returns the caches of exited
    /// threads first.</remarks>
    /// <exception cref="HeapCorruptionException">An invariant does not hold.</exception>
    /// <exception cref="ObjectDisposedException">The heap was disposed.</exception>
    public void Validate()
    {
        lock (_lock)
        {
            ThrowIfDisposed();
            ReclaimExitedLocked();
            PausableOwner.PauseAll(_caches);
            try
            {
                var cachedByOrder = new long[BuddyHeapOptions.MaxCachedOrderLimit + 1];
                foreach (ThreadCache cache in _caches)
                {
                    for (int order = 0; order <= _maxCachedOrder; order++)
                    {
                        cachedByOrder[order] += _core.CheckCache(cache.Caches + order, order);
                    }
                }

                Totals totals = SumCountersLocked();
                (_, ulong coreAllocated, long coreLive, _, _) = _core.Counters;
                _core.ValidateCore(cachedByOrder, (ulong)(totals.AllocatedBytes - (long)coreAllocated), totals.LiveBlocks - coreLive);
                _tier?.Validate();
            }
            finally
            {
                PausableOwner.ResumeAll(_caches);
            }
        }
    }

    /// <summary>
    /// Frees the core and the memory it owns. Calls in progress on other threads' lock-free paths are waited for; every later
    /// call on any thread throws <see cref="ObjectDisposedException"/>. Calling it again is harmless.
    /// </summary>
    public void Dispose()
    {
        lock (_lock)
        {
            if (_disposed)
            {
                return;
            }

            _disposed = true;
            _maxCachedOrder = -1;

            // Paused for good: an owner that read the old bound takes the locked path and finds the heap disposed.
            PausableOwner.PauseAll(_caches);
            foreach (ThreadCache cache in _caches)
            {
                cache.Clear();
            }

            _caches.Clear();
            _tier?.Dispose();
            _core.Dispose();
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private void ThrowIfDisposed()
    {
        if (_disposed)
        {
            ThrowHelper.ThrowObjectDisposed(this);
        }
    }

    /// <summary>The calling thread's cache for this heap, registering one on first use.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private ThreadCache CurrentCache()
    {
        ThreadCache? cache = CurrentCacheOrNull();
        if (cache != null)
        {
            return cache;
        }

        cache = new ThreadCache(this, _options);
        lock (_lock)
        {
            ThrowIfDisposed();
            ReclaimExitedLocked();
            _caches.Add(cache);
            _cacheOfThread.Value = cache;
        }

        t_cache = cache;
        return cache;
    }

    /// <summary>The calling thread's cache for this heap, or null when it has none yet.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private ThreadCache? CurrentCacheOrNull()
    {
        ThreadCache? cache = t_cache;
        if (cache != null && cache.HeapKey == _threadKey)
        {
            return cache;
        }

        ThrowIfDisposed();
        cache = _cacheOfThread.Value;
        if (cache != null)
        {
            t_cache = cache;
        }

        return cache;
    }

    /// <summary>The blocks of every (paused) cache, by order.</summary>
    private List<nint>?[] CollectCachedLocked()
    {
        var cached = new List<nint>?[BuddyHeapOptions.MaxCachedOrderLimit + 1];
        foreach (ThreadCache cache in _caches)
        {
            for (int order = 0; order <= _maxCachedOrder; order++)
            {
                BuddyHeap.CollectCached(cache.Caches + order, order, cached);
            }
        }

        return cached;
    }

    /// <summary>The core's counters plus every (paused) cache's and the retired ones.</summary>
    private Totals SumCountersLocked()
    {
        (ulong coreUser, ulong coreAllocated, long coreLive, long coreAllocations, long coreFailed) = _core.Counters;
        OwnerCounters owners = _retired;
        ulong cached = 0;
        foreach (ThreadCache cache in _caches)
        {
            owners.Add(cache);
            cached += cache.CachedBytes();
        }

        var totals = new Totals
        {
            UserBytes = (long)coreUser + owners.UserBytes,
            AllocatedBytes = (long)coreAllocated + owners.AllocatedBytes,
            LiveBlocks = coreLive + owners.LiveBlocks,
            Allocations = coreAllocations + owners.Allocations,
            FailedAllocations = coreFailed + _failedAllocations,
            CachedBytes = cached,
        };

        return totals;
    }

    /// <summary>Pauses every live thread's cache, returns its blocks to the core and resumes it; under the lock.</summary>
    private void ReturnAllCachesLocked()
    {
        PausableOwner.PauseAll(_caches);
        try
        {
            foreach (ThreadCache cache in _caches)
            {
                ReturnAllLocked(cache);
            }
        }
        finally
        {
            PausableOwner.ResumeAll(_caches);
        }
    }

    /// <summary>Runs the rescue callback, if any, for a failed <paramref name="layout"/>; whether it ran.</summary>
    private bool RescueLocked(Layout layout)
    {
        if (_rescue == null)
        {
            return false;
        }

        _rescue(_core, layout);
        _tier?.AddMissingRegionsLocked(); // the callback adds regions to the core only
        return true;
    }

    /// <summary>
    /// Before failing an allocation: returns the caches of exited threads and of every live thread (paused meanwhile) to the
    /// core, and the empty slabs of every thread; true when any block came back.
    /// </summary>
    private bool ReturnCachesForRetryLocked()
    {
        bool returned = ReclaimExitedLocked();
        if (_tier != null && _tier.ReturnEmptySlabsLocked())
        {
            returned = true;
        }

        ulong cached = 0;
        foreach (ThreadCache cache in _caches)
        {
            cached += cache.CachedBytes();
        }

        if (cached == 0)
        {
            return returned;
        }

        ReturnAllCachesLocked();
        return true;
    }

    /// <summary>
    /// Called after a full garbage collection: returns the caches of threads that have not allocated since the previous
    /// call; a heap nobody allocated from since then is trimmed once as <see cref="Trim"/> does, its large free blocks'
    /// pages given back, until it is used again. Skips the round when the lock is taken, so the finalizer thread never
    /// waits on the heap.
    /// </summary>
    internal void TrimIdle()
    {
        if (!_lock.TryEnter())
        {
            return;
        }

        try
        {
            if (_disposed)
            {
                return;
            }

            // A heap nobody allocated from since the last look is left alone: nothing would gain from its cached bytes.
            long allocations = SumCountersLocked().Allocations + (_tier?.AllocationsOfOwnersLocked() ?? 0);
            bool heapInUse = allocations != _allocationsAtLastTrim;
            _allocationsAtLastTrim = allocations;
            if (!heapInUse && !_purgedWhileIdle)
            {
                // Nobody allocated from the heap between two full collections: it gives its memory back once, as Trim
                // does (every thread's caches and empty slabs back to the core, the core's large free blocks purged).
                // mimalloc and jemalloc purge after a delay; here the delay is a full collection with no allocation.
                TrimLocked();
                _purgedWhileIdle = true;
                return;
            }

            _purgedWhileIdle &= !heapInUse;
            _tier?.ReturnIdleEmptySlabsLocked(heapInUse);
            var idle = new List<ThreadCache>();
            foreach (ThreadCache cache in _caches)
            {
                if (cache.IsIdleSinceLastLook() && heapInUse && cache.CachedBytes() != 0)
                {
                    idle.Add(cache);
                }
            }

            PausableOwner.PauseAll(idle);
            try
            {
                foreach (ThreadCache cache in idle)
                {
                    ReturnAllLocked(cache);
                }
            }
            finally
            {
                PausableOwner.ResumeAll(idle);
            }
        }
        finally
        {
            _lock.Exit();
        }
    }

    /// <summary>Returns the caches of threads that have exited to the core and folds their counters in; true when there were any.</summary>
    private bool ReclaimExitedLocked()
    {
        bool any = false;
        for (int i = _caches.Count - 1; i >= 0; i--)
        {
            ThreadCache cache = _caches[i];
            if (cache.Owner.IsAlive)
            {
                continue;
            }

            ReturnAllLocked(cache);
            cache.Clear();
            _retired.RetireAt(_caches, i);
            any = true;
        }

        return any;
    }

    /// <summary>Returns one cache's blocks to the core; its owner has exited or is paused.</summary>
    private void ReturnAllLocked(ThreadCache cache)
    {
        for (int order = 0; order <= _maxCachedOrder; order++)
        {
            _core.FlushCache(cache.Caches + order, order, 0);
        }
    }

    /// <summary>Counters summed over the core, the retired threads and every cache.</summary>
    private struct Totals
    {
        public long UserBytes;
        public long AllocatedBytes;
        public long LiveBlocks;
        public long Allocations;
        public long FailedAllocations;
        public ulong CachedBytes;
    }

    /// <summary>
    /// Calls <see cref="TrimIdle"/> after every generation 2 collection: an object whose finalizer re-registers itself
    /// survives into generation 2, so it is finalized once per full collection (the pattern of the runtime's
    /// <c>Gen2GcCallback</c>, which <c>ArrayPool&lt;T&gt;.Shared</c> trims on). Holds the heap weakly; stops when the heap
    /// is collected or disposed.
    /// </summary>
    private sealed class Gen2Trimmer
    {
        // A raw weak handle, not a WeakReference: that is finalizable itself and would die with this object.
        private GCHandle _heap;

        private Gen2Trimmer(ConcurrentHeap heap) => _heap = GCHandle.Alloc(heap, GCHandleType.Weak);

        public static void Start(ConcurrentHeap heap) => _ = new Gen2Trimmer(heap);

        ~Gen2Trimmer()
        {
            if (_heap.Target is not ConcurrentHeap heap || heap._disposed)
            {
                _heap.Free();
                return;
            }

            try
            {
                heap.TrimIdle();
            }
            catch (ObjectDisposedException)
            {
                _heap.Free();
                return;
            }

            GC.ReRegisterForFinalize(this);
        }
    }
}
