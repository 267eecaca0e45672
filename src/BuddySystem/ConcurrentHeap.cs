using System.Runtime.CompilerServices;
using BuddySystem.Internals;

namespace BuddySystem;

/// <summary>
/// A thread-safe buddy heap for many threads: per-thread caches of free blocks in front of one shared
/// <see cref="BuddyHeap"/> core, the way Linux puts per-CPU page lists in front of its zone's buddy lists.
/// </summary>
/// <remarks>
/// <para><b>Design.</b> Each thread that uses the heap gets its own bounded LIFO cache per small order (orders up to
/// <see cref="BuddyHeapOptions.MaxCachedOrder"/>, bounds as in <see cref="BuddyHeapOptions"/>, per thread). An allocation of a
/// cached order pops the calling thread's cache without any lock or atomic instruction; an empty cache is refilled under
/// the core's lock with one batch (one larger block cut into many). A free parks the block in the calling thread's cache
/// (whichever thread allocated it: a free from another thread is an ordinary free); a full cache returns half of its blocks to
/// the core under the lock, merging. Larger orders go straight to the core under the lock. The core is an eager
/// <see cref="BuddyHeap"/>; every block's state lives in its side table, which is how frees are checked exactly.</para>
/// <para><b>Checks on the fast path.</b> A free is taken lock-free only when the pointer is 16-aligned inside a region and its
/// side-table state byte says "allocated, of exactly the order the layout maps to". Everything else goes under the lock,
/// where <see cref="BuddyHeap.Deallocate"/>'s checks run and throw, naming the address, before anything changes: null, an
/// address outside every region, an interior address, a double free, a layout of another block size. A double free is
/// detected exactly when the second free happens after the first one in the program's order (same thread, or ordered by
/// any synchronisation); two frees of one block racing on two threads at the same moment are not guaranteed to be caught,
/// because the fast path reads and writes the state byte without an atomic instruction.</para>
/// <para><b>Bounds and reclaiming.</b> A thread's caches hold at most the per-order bounds of the options (255 KiB with the
/// defaults). The caches of threads that have exited are returned to the core by <see cref="Trim"/>, by <see cref="Stats"/>,
/// <see cref="Validate"/>, when a new thread first uses the heap, and before an allocation would fail. The caches of live
/// threads are never touched by another thread: <see cref="Trim"/> returns the calling thread's own caches.</para>
/// <para><b>Thread safety.</b> Every member is safe from any thread, except that <see cref="Validate"/> and an exact
/// <see cref="Stats"/> need the other threads to be quiet, and <see cref="Dispose"/> must not race with other calls.</para>
/// </remarks>
public sealed unsafe partial class ConcurrentHeap : IAllocator, IHeapStatsSource, IDisposable
{
    // The cache of the heap this thread used last: one thread-static read finds it on the fast path.
    [ThreadStatic]
    private static ThreadCache? t_cache;

    private readonly Lock _lock = new();
    private readonly BuddyHeap _core;
    private readonly BuddyHeapOptions _options;
    private readonly ThreadLocal<ThreadCache?> _cacheOfThread = new();
    private readonly List<ThreadCache> _caches = [];

    // -1 when the thread caches are off or the heap is disposed: every call then goes under the lock.
    private int _maxCachedOrder;
    private bool _disposed;

    // Counters folded in from the caches of exited threads, and failures of cached orders; under the lock.
    private long _retiredAllocations;
    private long _retiredLiveBlocks;
    private long _retiredAllocatedBytes;
    private long _retiredUserBytes;
    private long _failedAllocations;

    /// <summary>Creates an empty heap; give it memory with <see cref="AddRegion"/>.</summary>
    /// <param name="options">The per-thread cache bounds; <see langword="null"/> for <see cref="BuddyHeapOptions.ConcurrentDefault"/>.
    /// With <see cref="BuddyHeapOptions.LazyCaches"/> off every call takes the lock (a <see cref="LockedHeap"/> that merges eagerly).</param>
    /// <exception cref="ArgumentOutOfRangeException">An option is out of its documented range.</exception>
    /// <exception cref="ArgumentException"><see cref="BuddyHeapOptions.Hardening"/> is set: hardened mode needs a <see cref="BuddyHeap"/> or <see cref="LockedHeap"/>.</exception>
    public ConcurrentHeap(BuddyHeapOptions? options = null)
    {
        _options = options ?? BuddyHeapOptions.ConcurrentDefault;
        _options.Validate();
        if (_options.Hardening != null)
        {
            // The per-thread caches hand out and take back blocks without the core's hardened paths.
            ThrowHelper.ThrowArgument("Hardened mode (BuddyHeapOptions.Hardening) is available with BuddyHeap and LockedHeap, not ConcurrentHeap.", nameof(options));
        }

        _core = new BuddyHeap(BuddyHeapOptions.Eager);
        _maxCachedOrder = _options.LazyCaches ? _options.MaxCachedOrder : -1;
    }

    /// <summary>Creates a heap over a new native region of <paramref name="size"/> bytes (see <see cref="BuddyHeap.Create"/>).</summary>
    /// <param name="size">Bytes to manage; at least <see cref="BuddyHeap.MinBlockSize"/>.</param>
    /// <param name="options">The per-thread cache bounds; <see langword="null"/> for <see cref="BuddyHeapOptions.ConcurrentDefault"/>.</param>
    /// <returns>A heap that owns its memory; disposing it frees the memory.</returns>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="size"/> is too small or an option is out of range.</exception>
    public static ConcurrentHeap Create(nuint size, BuddyHeapOptions? options = null)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(size, BuddyHeap.MinBlockSize);
        var heap = new ConcurrentHeap(options);
        heap._core.AddOwnedRegion(size);
        return heap;
    }

    /// <summary>The per-thread cache bounds the heap was created with.</summary>
    public BuddyHeapOptions Options => _options;

    /// <summary>Adds memory under the lock; see <see cref="BuddyHeap.AddRegion(void*, nuint)"/>.</summary>
    /// <param name="start">First byte; must stay valid until the heap is disposed.</param>
    /// <param name="size">Bytes.</param>
    public void AddRegion(void* start, nuint size)
    {
        lock (_lock)
        {
            _core.AddRegion(start, size);
        }
    }

    /// <summary>Allocates a block as <see cref="BuddyHeap.Allocate"/> does; safe from any thread.</summary>
    /// <param name="layout">Size and alignment wanted.</param>
    /// <returns>The block; <see langword="null"/> when no free block is large enough (after returning the calling thread's
    /// caches and those of exited threads to the core).</returns>
    /// <exception cref="ObjectDisposedException">The heap was disposed.</exception>
    /// <remarks>Fast path (a cached order whose cache is not empty): one thread-static read, a pop, one side-table write and
    /// four counter updates in the thread's own cache; no lock, no atomic instruction.</remarks>
    public void* Allocate(Layout layout)
    {
        int order = Orders.OrderFor(layout.Size, layout.Align, BuddyHeap.MinShift);
        ThreadCache? cache = t_cache;
        if (order <= _maxCachedOrder && cache != null && cache.Heap == this)
        {
            BuddyHeap.OrderCache* orderCache = cache.Caches + order;
            BuddyHeap.CachedBlock* block = orderCache->Head;
            if (block != null)
            {
                orderCache->Head = block->Next;
                orderCache->Count--;
                *cache.StateOf((ulong)block) = (byte)(BuddyHeap.StateAllocated | order);
                cache.CountAllocation(order, layout.Size);
                return block;
            }
        }

        return AllocateSlow(layout, order);
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private void* AllocateSlow(Layout layout, int order)
    {
        if (order > _maxCachedOrder)
        {
            lock (_lock)
            {
                ThrowIfDisposed();
                void* block = _core.Allocate(layout);
                if (block == null && ReturnCachesForRetryLocked(CurrentCacheOrNull()))
                {
                    // The core counted the first try as a failure; the call as a whole fails at most once, and not at all
                    // when the retry succeeds (found by the misuse matrix and a review).
                    _failedAllocations--;
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
                !(ReturnCachesForRetryLocked(cache) && _core.RefillCache(orderCache, order)))
            {
                _failedAllocations++;
                return null;
            }
        }

        BuddyHeap.CachedBlock* taken = orderCache->Head;
        orderCache->Head = taken->Next;
        orderCache->Count--;
        *cache.StateOf((ulong)taken) = (byte)(BuddyHeap.StateAllocated | order);
        cache.CountAllocation(order, layout.Size);
        return taken;
    }

    /// <summary>Frees a block with the checks of <see cref="BuddyHeap.Deallocate"/>; safe from any thread, whichever thread allocated it.</summary>
    /// <param name="ptr">A live block of this heap.</param>
    /// <param name="layout">A layout that maps to the block's size.</param>
    /// <exception cref="ArgumentNullException"><paramref name="ptr"/> is null.</exception>
    /// <exception cref="ArgumentException"><paramref name="ptr"/> is outside every region or not the start of a block, or
    /// <paramref name="layout"/> maps to another block size; the heap is unchanged.</exception>
    /// <exception cref="InvalidOperationException">The block is not allocated (a double free); the heap is unchanged.</exception>
    /// <exception cref="ObjectDisposedException">The heap was disposed.</exception>
    /// <remarks>Fast path: the side-table state byte must equal "allocated, of the layout's order" (see the class remarks),
    /// then the block is pushed on the calling thread's cache; no lock unless the cache is full.</remarks>
    public void Deallocate(void* ptr, Layout layout)
    {
        int order = Orders.OrderFor(layout.Size, layout.Align, BuddyHeap.MinShift);
        ThreadCache? cache = t_cache;
        if (order <= _maxCachedOrder && cache != null && cache.Heap == this)
        {
            // The region the thread used last, copied into its cache: no load through the core on the fast path.
            ulong offset = (ulong)ptr - cache.HotStart;
            byte* state = cache.HotStates + (offset >> BuddyHeap.MinShift);
            if (offset < cache.HotLength && (offset & ((ulong)BuddyHeap.MinBlockSize - 1)) == 0 &&
                *state == (byte)(BuddyHeap.StateAllocated | order))
            {
                BuddyHeap.OrderCache* orderCache = cache.Caches + order;
                if (orderCache->Count < orderCache->Capacity)
                {
                    *state = (byte)(BuddyHeap.StateCached | order);
                    ((BuddyHeap.CachedBlock*)ptr)->Next = orderCache->Head;
                    orderCache->Head = (BuddyHeap.CachedBlock*)ptr;
                    orderCache->Count++;
                    cache.CountFree(order, layout.Size);
                    return;
                }
            }
        }

        DeallocateSlow(ptr, layout, order);
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
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
            if (orderCache->Count >= orderCache->Capacity)
            {
                _core.FlushCache(orderCache, order, orderCache->Capacity >> 1);
            }

            *cache.StateOf((ulong)ptr) = (byte)(BuddyHeap.StateCached | order);
            ((BuddyHeap.CachedBlock*)ptr)->Next = orderCache->Head;
            orderCache->Head = (BuddyHeap.CachedBlock*)ptr;
            orderCache->Count++;
        }

        cache.CountFree(order, layout.Size);
    }

    /// <summary>Resizes a block as <see cref="BuddyHeap.Reallocate"/> does (in place when the block size stays); safe from any thread.</summary>
    /// <param name="ptr">A live block of this heap.</param>
    /// <param name="layout">Its current layout.</param>
    /// <param name="newSize">The new size in bytes.</param>
    /// <returns>The block's address; <see langword="null"/> when it had to move and no block was free (the old block stays live).</returns>
    /// <exception cref="ArgumentException">As for <see cref="Deallocate(void*, Layout)"/>, or <paramref name="newSize"/> overflows with the alignment.</exception>
    /// <exception cref="InvalidOperationException">As for <see cref="Deallocate(void*, Layout)"/>.</exception>
    /// <exception cref="ObjectDisposedException">The heap was disposed.</exception>
    public void* Reallocate(void* ptr, Layout layout, nuint newSize)
    {
        var newLayout = new Layout(newSize, layout.Align);
        int order;
        lock (_lock)
        {
            ThrowIfDisposed();
            order = _core.CheckLiveBlock(ptr, layout, out _);
            if (order > _maxCachedOrder)
            {
                void* resized = _core.Reallocate(ptr, layout, newSize);
                if (resized == null && ReturnCachesForRetryLocked(CurrentCacheOrNull()))
                {
                    // As in Allocate: memory parked in thread caches must not make a reallocation fail.
                    _failedAllocations--;
                    resized = _core.Reallocate(ptr, layout, newSize);
                }

                return resized;
            }
        }

        if (Orders.OrderFor(newSize, layout.Align, BuddyHeap.MinShift) == order)
        {
            ThreadCache cache = CurrentCache();
            cache.UserBytes += (long)newSize - (long)layout.Size;
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

    /// <summary>
    /// Returns the calling thread's cached blocks and the caches of exited threads to the core, merging. With no live block
    /// and no other live thread holding a cache, the heap is then fully merged.
    /// </summary>
    /// <remarks>The caches of other live threads are left alone (they belong to those threads; each may call Trim itself).</remarks>
    /// <exception cref="ObjectDisposedException">The heap was disposed.</exception>
    public void Trim()
    {
        ThreadCache? cache = CurrentCacheOrNull();
        lock (_lock)
        {
            ThrowIfDisposed();
            ReclaimExitedLocked();
            if (cache != null)
            {
                ReturnAllLocked(cache);
            }
        }
    }

    /// <summary>A snapshot of the accounting: the core's buddy lists plus every thread's cache and counters.</summary>
    /// <remarks>Reads other threads' counters without stopping them, so it is exact only when they are quiet. Returns the
    /// caches of exited threads first. <see cref="HeapStats.FreeBlocksByOrder"/> counts the core's buddy lists.</remarks>
    /// <exception cref="ObjectDisposedException">The heap was disposed.</exception>
    public HeapStats Stats
    {
        get
        {
            lock (_lock)
            {
                ThrowIfDisposed();
                ReclaimExitedLocked();
                HeapStats core = _core.Stats;
                long allocations = _retiredAllocations;
                long live = _retiredLiveBlocks;
                long allocatedBytes = _retiredAllocatedBytes;
                long userBytes = _retiredUserBytes;
                ulong cached = 0;
                foreach (ThreadCache cache in _caches)
                {
                    allocations += Volatile.Read(ref cache.Allocations);
                    live += Volatile.Read(ref cache.LiveBlocks);
                    allocatedBytes += Volatile.Read(ref cache.AllocatedBytes);
                    userBytes += Volatile.Read(ref cache.UserBytes);
                    cached += cache.CachedBytes();
                }

                // A thread's counters go negative when it frees blocks the core counted (a block the core allocated in
                // Reallocate, freed through a thread cache): add them signed, never clamp them (found by buddy soak).
                return core with
                {
                    // A free may name any size of the same block size, so the sum can dip below zero: floor it, as BuddyHeap does.
                    UserBytes = (ulong)Math.Max(0, (long)core.UserBytes + userBytes),
                    AllocatedBytes = (ulong)((long)core.AllocatedBytes + allocatedBytes),
                    FreeBytes = core.FreeBytes + cached,
                    CachedBytes = core.CachedBytes + cached,
                    LiveBlocks = core.LiveBlocks + live,
                    Allocations = core.Allocations + allocations,
                    FailedAllocations = core.FailedAllocations + _failedAllocations,
                };
            }
        }
    }

    /// <summary>
    /// Checks every invariant of <see cref="BuddyHeap.Validate"/> on the core, plus every thread's caches (each cached block
    /// marked cached of its order, counts and bounds), and that the side table's allocated blocks match all counters.
    /// </summary>
    /// <remarks>Call it while no other thread uses the heap. Returns the caches of exited threads first.</remarks>
    /// <exception cref="HeapCorruptionException">An invariant does not hold.</exception>
    /// <exception cref="ObjectDisposedException">The heap was disposed.</exception>
    public void Validate()
    {
        lock (_lock)
        {
            ThrowIfDisposed();
            ReclaimExitedLocked();
            var cachedByOrder = new long[BuddyHeapOptions.MaxCachedOrderLimit + 1];
            long live = _retiredLiveBlocks;
            long allocatedBytes = _retiredAllocatedBytes;
            foreach (ThreadCache cache in _caches)
            {
                for (int order = 0; order <= _maxCachedOrder; order++)
                {
                    cachedByOrder[order] += _core.CheckCache(cache.Caches + order, order);
                }

                live += cache.LiveBlocks;
                allocatedBytes += cache.AllocatedBytes;
            }

            _core.ValidateCore(cachedByOrder, (ulong)allocatedBytes, live);
        }
    }

    /// <summary>Frees the core and the memory it owns. Must not race with other calls; calling it again is harmless.</summary>
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
            foreach (ThreadCache cache in _caches)
            {
                cache.Clear();
            }

            _caches.Clear();
            _core.Dispose();
        }

        _cacheOfThread.Dispose();
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
        }

        _cacheOfThread.Value = cache;
        t_cache = cache;
        return cache;
    }

    /// <summary>The calling thread's cache for this heap, or null when it has none yet.</summary>
    private ThreadCache? CurrentCacheOrNull()
    {
        ThreadCache? cache = t_cache;
        if (cache != null && cache.Heap == this)
        {
            return cache;
        }

        if (_disposed)
        {
            return null;
        }

        cache = _cacheOfThread.Value;
        if (cache != null)
        {
            t_cache = cache;
        }

        return cache;
    }

    /// <summary>Before failing an allocation: returns exited threads' caches and the caller's own; true when anything came back.</summary>
    private bool ReturnCachesForRetryLocked(ThreadCache? cache)
    {
        bool returned = ReclaimExitedLocked();
        if (cache != null && cache.CachedBytes() != 0)
        {
            ReturnAllLocked(cache);
            returned = true;
        }

        return returned;
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
            _retiredAllocations += cache.Allocations;
            _retiredLiveBlocks += cache.LiveBlocks;
            _retiredAllocatedBytes += cache.AllocatedBytes;
            _retiredUserBytes += cache.UserBytes;
            cache.Clear();
            _caches[i] = _caches[^1];
            _caches.RemoveAt(_caches.Count - 1);
            any = true;
        }

        return any;
    }

    private void ReturnAllLocked(ThreadCache cache)
    {
        for (int order = 0; order <= _maxCachedOrder; order++)
        {
            _core.FlushCache(cache.Caches + order, order, 0);
        }
    }
}
