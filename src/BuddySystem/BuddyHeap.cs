namespace BuddySystem;

/// <summary>
/// A buddy-system heap over memory regions handed to it: the <c>Heap</c> of the Rust crate
/// <c>buddy_system_allocator</c> that the rCore tutorial uses as its kernel heap, with O(1) steps and exact misuse detection.
/// </summary>
/// <remarks>
/// <para><b>Design.</b> A block of order k is <see cref="MinBlockSize"/> &lt;&lt; k bytes and starts at an address that is a
/// multiple of its size (absolute addresses, so a block's buddy is <c>address ^ size</c>). Free blocks of each order sit
/// on an intrusive doubly linked list (the two links live in the free block itself, which is why the smallest block is
/// 16 bytes); a 64-bit mask records which orders are non-empty, so the smallest fitting order is found with one bit scan.
/// Every 16-byte granule of a region has one state byte in a side table the heap allocates for itself: 0 for a granule
/// inside a block, otherwise "free of order k" or "allocated of order k" for the granule that starts a block. The side
/// table is 1/16 of the managed bytes and is the only metadata.</para>
/// <para><b>Cost.</b> Allocate pops one list and splits down: O(orders) steps of O(1). Deallocate reads the buddy's
/// state from the side table and merges upward: O(orders) steps of O(1). No list is ever scanned (the Rust crate scans the
/// free list for the buddy: O(free blocks) per free). Finding the region of a pointer is a
/// binary search over the regions, O(1) for a single region.</para>
/// <para><b>Lazy layer.</b> By default (<see cref="BuddyHeapOptions.LazyCaches"/>) freed blocks of orders up to
/// <see cref="BuddyHeapOptions.MaxCachedOrder"/> are parked, unmerged, in bounded per-order LIFO caches linked through
/// the blocks' first word; an allocation of such an order pops its cache in a few instructions. An empty cache is refilled
/// by cutting one larger block into a batch; while a cache is full, further frees of its order go straight to the buddy
/// lists, merging, as in the eager algorithm (cheaper than flushing half the cache: docs/benchmarks.md). So a LIFO
/// pair costs a pop and a push instead of splitting and merging every level. Cached blocks have their own state in the
/// side table, so every misuse check below stays exact for them. <see cref="Trim"/> returns all cached blocks, and an
/// allocation that would fail trims first. Bounds: see <see cref="BuddyHeapOptions"/>. With
/// <see cref="BuddyHeapOptions.Eager"/> the heap is the tutorial's algorithm, merging on every free.</para>
/// <para><b>Memory back.</b> <see cref="Trim"/> also returns the pages of free blocks of at least
/// <see cref="BuddyHeapOptions.PurgeThreshold"/> bytes to the operating system (Linux, <c>MADV_DONTNEED</c>), all but the
/// page holding each block's links; allocation and free never do.</para>
/// <para><b>Misuse.</b> Deallocate checks, before changing anything, that the pointer lies in a region, starts a block,
/// that the block is allocated, and that the layout maps to the block's size; otherwise it throws and the heap is unchanged.</para>
/// <para><b>Thread safety.</b> None: use one thread at a time, or wrap it in <see cref="LockedHeap"/>.</para>
/// </remarks>
public sealed unsafe partial class BuddyHeap : IAllocator, IHeapStatsSource, IExhaustionInfoSource, IDisposable
{
    /// <summary>log2 of <see cref="MinBlockSize"/>.</summary>
    internal const int MinShift = 4;

    /// <summary>The highest order: blocks of 2^63 bytes.</summary>
    internal const int MaxOrder = 63 - MinShift;

    internal const byte StateFree = 0x80;
    internal const byte StateAllocated = 0x40;
    internal const byte OrderMask = 0x3F;

    /// <summary>The smallest block: 16 bytes, room for the two links of a free block.</summary>
    public static nuint MinBlockSize => 1u << MinShift;

    // Free-list heads per order, in a pinned array so the hot path indexes without bounds checks.
    private readonly FreeBlock** _heads;
    private readonly nint[] _headsArray;
    private ulong _nonEmptyOrders;

    // Per-order caches of the lazy layer, in a pinned array; _maxCachedOrder is -1 when the caches are off or disposed.
    private readonly OrderCache[] _cacheArray;
    private readonly OrderCache* _caches;
    private int _maxCachedOrder;

    private Region[] _regions = [];
    private int _lastRegion;

    private ulong _userBytes;
    private ulong _allocatedBytes;
    private ulong _totalBytes;
    private ulong _metadataBytes;
    private long _liveBlocks;
    private long _allocations;
    private long _failedAllocations;

    private readonly List<IDisposable> _ownedRegions = [];

    // Region owners added with the owning AddRegion overloads: referenced here so the GC keeps their memory while the heap uses it.
    private readonly List<object> _rootedRegions = [];
    private bool _disposed;

    /// <summary>Creates an empty heap with the default options (lazy caches on); give it memory with <see cref="AddRegion(void*, nuint)"/>.</summary>
    public BuddyHeap()
        : this(BuddyHeapOptions.Default)
    {
    }

    /// <summary>Creates an empty heap; give it memory with <see cref="AddRegion(void*, nuint)"/>.</summary>
    /// <param name="options">Whether and how much to cache; <see cref="BuddyHeapOptions.Eager"/> for the tutorial's algorithm.</param>
    /// <exception cref="ArgumentNullException"><paramref name="options"/> is null.</exception>
    /// <exception cref="ArgumentOutOfRangeException">An option is out of its documented range.</exception>
    public BuddyHeap(BuddyHeapOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        Options = options;
        _headsArray = GC.AllocateArray<nint>(MaxOrder + 1, pinned: true);
        _heads = (FreeBlock**)Unsafe.AsPointer(ref MemoryMarshal.GetArrayDataReference(_headsArray));
        _cacheArray = GC.AllocateArray<OrderCache>(BuddyHeapOptions.MaxCachedOrderLimit + 1, pinned: true);
        _caches = (OrderCache*)Unsafe.AsPointer(ref MemoryMarshal.GetArrayDataReference(_cacheArray));
        _maxCachedOrder = options.LazyCaches ? options.MaxCachedOrder : -1;
        _hardening = HardeningState.For(options); // hardening hook (BuddyHeap.Hardening.cs)
        for (int order = 0; order <= _maxCachedOrder; order++)
        {
            _caches[order].Initialize(options.CapacityOf(order, MinShift));
        }
    }

    /// <summary>
    /// Creates a heap over a new native region of <paramref name="size"/> bytes, aligned to the largest power of two
    /// not above it so that it starts as one block; the region is freed when the heap is disposed.
    /// </summary>
    /// <param name="size">Bytes to manage; at least <see cref="MinBlockSize"/>.</param>
    /// <param name="options">Caching options; <see langword="null"/> for <see cref="BuddyHeapOptions.Default"/>.</param>
    /// <returns>A heap that owns its memory.</returns>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="size"/> is smaller than <see cref="MinBlockSize"/>, or an option is out of range.</exception>
    /// <exception cref="OutOfMemoryException">The process could not get the memory.</exception>
    public static BuddyHeap Create(nuint size, BuddyHeapOptions? options = null)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(size, MinBlockSize);
        var heap = new BuddyHeap(options ?? BuddyHeapOptions.Default);
        heap.AddOwnedRegion(size);
        return heap;
    }

    /// <summary>Adds a new native region of <paramref name="size"/> bytes aligned so that it starts as one block; freed on dispose.</summary>
    internal NativeRegion AddOwnedRegion(nuint size)
    {
        var region = NativeRegion.StartingAsOneBlock(size);
        AddRegion(region.Pointer, region.Size);
        _ownedRegions.Add(region);
        MarkPurgeable(region.Pointer, region.Size);
        return region;
    }

    /// <summary>
    /// Adds the memory [<paramref name="start"/>, start + <paramref name="size"/>) to the heap (the crate's <c>init</c> and
    /// <c>add_to_heap</c>). The start may have any alignment: the bytes before the first 16-byte boundary and after the last
    /// are not used, and the rest is cut into the largest blocks aligned to their size.
    /// </summary>
    /// <param name="start">First byte of the region. The memory must stay valid until the heap is disposed.</param>
    /// <param name="size">Bytes in the region.</param>
    /// <exception cref="ArgumentNullException"><paramref name="start"/> is null.</exception>
    /// <exception cref="ArgumentException">The region wraps around the address space, holds no whole 16-byte granule,
    /// is larger than one side table can describe (about 32 GiB; add such memory as several regions),
    /// or overlaps a region already added (the message names the addresses); the heap is unchanged.</exception>
    /// <exception cref="ObjectDisposedException">The heap was disposed.</exception>
    /// <remarks><para>Metadata for the region (one byte per 16 bytes) is allocated in native memory, freed on dispose.</para>
    /// <para>The heap keeps only the address: nothing keeps the memory's owner alive. For a <see cref="NativeRegion"/> or a
    /// <see cref="PinnedArrayRegion"/> use <see cref="AddRegion(NativeRegion)"/> or <see cref="AddRegion(PinnedArrayRegion)"/>,
    /// which root the owner; with this overload a region the GC collects (its finalizer, or the array) frees memory the heap
    /// still hands out.</para></remarks>
    public void AddRegion(void* start, nuint size)
    {
        ThrowIfDisposed();
        if (start == null)
        {
            throw new ArgumentNullException(nameof(start), "A region cannot start at address 0.");
        }

        ulong raw = (ulong)start;
        if (size > nuint.MaxValue - (nuint)start)
        {
            ThrowHelper.ThrowArgument($"Region {ThrowHelper.Hex(raw)} of {size} bytes wraps around the address space.", nameof(size));
        }

        // A start in the last 15 bytes of the address space would round up past 2^64 to 0.
        ulong first = raw > ulong.MaxValue - (MinBlockSize - 1) ? ulong.MaxValue : (raw + MinBlockSize - 1) & ~(ulong)(MinBlockSize - 1);
        ulong end = (raw + size) & ~(ulong)(MinBlockSize - 1);
        if (end <= first)
        {
            ThrowHelper.ThrowArgument($"Region {ThrowHelper.Hex(raw)} of {size} bytes holds no aligned {MinBlockSize}-byte block.", nameof(size));
        }

        if ((end - first) >> MinShift > (ulong)Array.MaxLength)
        {
            // The side table of one region is one array; larger memory can be added as several adjacent regions.
            ThrowHelper.ThrowArgument($"Region {ThrowHelper.Hex(raw)} of {size} bytes is larger than one region can be ({(ulong)Array.MaxLength << MinShift} bytes); add it in pieces.", nameof(size));
        }

        foreach (Region existing in _regions)
        {
            if (first < existing.End && existing.Start < end)
            {
                ThrowHelper.ThrowArgument(
                    $"Region {ThrowHelper.Hex(first)}..{ThrowHelper.Hex(end)} overlaps region {ThrowHelper.Hex(existing.Start)}..{ThrowHelper.Hex(existing.End)} already in the heap.",
                    nameof(start));
            }
        }

        var region = new Region(first, end);
        Region[] regions = Regions.Insert(_regions, region, out int insertAt);
        // Published with a release write: thread-safe fronts read the region table without their lock (copy on write).
        Volatile.Write(ref _regions, regions);
        _lastRegion = insertAt;
        _totalBytes += end - first;
        _metadataBytes += region.Length;

        for (ulong cursor = first; cursor < end;)
        {
            int order = Orders.LargestFittingOrder(cursor, end, MinShift, MaxOrder);
            region.States[(cursor - first) >> MinShift] = (byte)(StateFree | order);
            Push((FreeBlock*)cursor, order);
            cursor += (ulong)MinBlockSize << order;
        }

        if (_hardening != null)
        {
            PoisonNewRegion(first); // hardening hook (BuddyHeap.Hardening.cs)
        }
    }

    /// <summary>Adds all of <paramref name="region"/> and keeps the region object reachable until the heap is disposed.</summary>
    /// <param name="region">Native memory; it stays the caller's to dispose, after the heap (or its finalizer frees it once
    /// neither the heap nor the caller references it). <see cref="Trim"/> may return the pages of its free blocks to the
    /// system (see <see cref="BuddyHeapOptions.PurgeThreshold"/>): their bytes read as zeros afterwards.</param>
    /// <exception cref="ArgumentNullException"><paramref name="region"/> is null.</exception>
    /// <exception cref="ObjectDisposedException">The region or the heap was disposed.</exception>
    /// <exception cref="ArgumentException">As for <see cref="AddRegion(void*, nuint)"/>.</exception>
    public void AddRegion(NativeRegion region)
    {
        ArgumentNullException.ThrowIfNull(region);
        AddRegion(region.Pointer, region.Size);
        _rootedRegions.Add(region);
        MarkPurgeable(region.Pointer, region.Size);
    }

    /// <summary>Adds all of <paramref name="region"/> and keeps its pinned array reachable until the heap is disposed.</summary>
    /// <param name="region">A region of a pinned array.</param>
    /// <exception cref="ArgumentNullException"><paramref name="region"/> is null.</exception>
    /// <exception cref="ObjectDisposedException">The heap was disposed.</exception>
    /// <exception cref="ArgumentException">As for <see cref="AddRegion(void*, nuint)"/>.</exception>
    public void AddRegion(PinnedArrayRegion region)
    {
        ArgumentNullException.ThrowIfNull(region);
        AddRegion(region.Pointer, (nuint)region.Size);
        _rootedRegions.Add(region);
    }

    /// <summary>
    /// Allocates a block of max(next power of two of <see cref="Layout.Size"/>, <see cref="Layout.Align"/>, 16) bytes,
    /// aligned to its size.
    /// </summary>
    /// <param name="layout">Size and alignment wanted; a zero size gets a unique 16-byte block.</param>
    /// <returns>The block; <see langword="null"/> when no free block is large enough, even after <see cref="Trim"/>.</returns>
    /// <exception cref="ObjectDisposedException">The heap was disposed.</exception>
    /// <remarks>With lazy caches, a cached order pops its cache (O(1)); an empty cache is refilled with one batch.</remarks>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public void* Allocate(Layout layout)
    {
        if (_hardening != null)
        {
            return HardenedAllocate(layout); // hardening hook (BuddyHeap.Hardening.cs)
        }

        // Fast path: pop the order's cache. A disposed heap has no cache (_maxCachedOrder = -1), so the slow path throws.
        int order = Orders.OrderFor(layout.Size, layout.Align, MinShift);
        if (order <= _maxCachedOrder)
        {
            OrderCache* cache = _caches + order;
            if (cache->Head != null)
            {
                CachedBlock* block = cache->Pop();
                MarkAllocated((ulong)block, order);
                _userBytes += layout.Size;
                return block;
            }
        }

        return AllocateSlow(layout, order);
    }

    [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
    private void* AllocateSlow(Layout layout, int order)
    {
        ThrowIfDisposed();
        void* block = null;
        if (order <= MaxOrder)
        {
            block = AllocateUncached(order);
            if (block == null && CachedBytesInCaches() != 0)
            {
                // Cached blocks may be what keeps a larger block from merging: return them and try once more (no purge: the
                // block is wanted now).
                FlushAllCaches();
                block = AllocateUncached(order);
            }
        }

        if (block == null)
        {
            _failedAllocations++;
            return null;
        }

        _userBytes += layout.Size;
        return block;
    }

    /// <summary>Serves <paramref name="order"/> from a batch refill of its cache when it is cached, else from the buddy lists.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private void* AllocateUncached(int order)
    {
        if (order <= _maxCachedOrder)
        {
            OrderCache* cache = _caches + order;
            if (cache->Head == null && !RefillCache(cache, order))
            {
                return null;
            }

            CachedBlock* block = cache->Pop();
            MarkAllocated((ulong)block, order);
            return block;
        }

        return AllocateOrder(order);
    }

    /// <summary>Marks a block taken from a cache allocated and counts it.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private void MarkAllocated(ulong block, int order)
    {
        ref Region region = ref RegionOf(block);
        region.States[(block - region.Start) >> MinShift] = (byte)(StateAllocated | order);
        _allocatedBytes += (ulong)MinBlockSize << order;
        _liveBlocks++;
        _allocations++;
    }

    /// <summary>Pops a block of <paramref name="order"/>, splitting a larger one when needed, and marks it allocated.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining | MethodImplOptions.AggressiveOptimization)]
    private void* AllocateOrder(int order)
    {
        ulong candidates = _nonEmptyOrders >> order;
        if (candidates == 0)
        {
            return null;
        }

        int found = order + BitOperations.TrailingZeroCount(candidates);
        FreeBlock* block = TakeSplitDown(found, order, out byte* states, out ulong start);
        states[((ulong)block - start) >> MinShift] = (byte)(StateAllocated | order);
        _allocatedBytes += (ulong)MinBlockSize << order;
        _liveBlocks++;
        _allocations++;
        return block;
    }

    /// <summary>
    /// Takes the first block of the free list of <paramref name="found"/> and splits it down to <paramref name="order"/>,
    /// keeping the lower half each time; the upper halves become free blocks of each lower order. Returns the kept block,
    /// still unmarked, with its region's state bytes and start.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining | MethodImplOptions.AggressiveOptimization)]
    private FreeBlock* TakeSplitDown(int found, int order, out byte* states, out ulong start)
    {
        FreeBlock* block = _heads[found];
        Unlink(block, found);
        ref Region region = ref RegionOf((ulong)block);
        states = region.States;
        start = region.Start;
        while (found > order)
        {
            found--;
            var upper = (FreeBlock*)((byte*)block + ((nuint)MinBlockSize << found));
            states[((ulong)upper - start) >> MinShift] = (byte)(StateFree | found);
            Push(upper, found);
        }

        return block;
    }

    /// <summary>Frees a block and merges it with its buddy for as long as the buddy is free and of the same order.</summary>
    /// <param name="ptr">A block returned by <see cref="Allocate"/> of this heap.</param>
    /// <param name="layout">A layout that maps to the same block size as the one used to allocate it.</param>
    /// <exception cref="ArgumentNullException"><paramref name="ptr"/> is null.</exception>
    /// <exception cref="ArgumentException"><paramref name="ptr"/> lies outside every region, is not the start of a block,
    /// or <paramref name="layout"/> maps to another block size. The message names the address; the heap is unchanged.</exception>
    /// <exception cref="InvalidOperationException">The block at <paramref name="ptr"/> is not allocated (a double free);
    /// the message names the address; the heap is unchanged.</exception>
    /// <exception cref="ObjectDisposedException">The heap was disposed.</exception>
    /// <remarks>With lazy caches a block of a cached order is parked in its cache, unmerged; the checks are the same.</remarks>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public void Deallocate(void* ptr, Layout layout)
    {
        if (_hardening != null)
        {
            HardenedDeallocate(ptr, layout); // hardening hook (BuddyHeap.Hardening.cs)
            return;
        }

        // Fast path: the pointer is 16-aligned inside the last region used and its state byte says "allocated, of exactly
        // the order the layout maps to". That one comparison is the whole misuse check; anything else (null, another
        // region, a double free, a wrong layout, a disposed heap) takes the slow path, which finds out which and throws.
        ulong address = (ulong)ptr;
        int order = Orders.OrderFor(layout.Size, layout.Align, MinShift);
        Region[] regions = _regions;
        int last = _lastRegion;
        if ((uint)last < (uint)regions.Length)
        {
            ref Region region = ref regions[last];
            ulong offset = address - region.Start;
            if (offset < region.End - region.Start && (offset & ((ulong)MinBlockSize - 1)) == 0)
            {
                byte* state = region.States + (offset >> MinShift);
                if (*state == (byte)(StateAllocated | order))
                {
                    Release(address, order, state, layout.Size, ref region);
                    return;
                }
            }
        }

        DeallocateSlow(ptr, layout);
    }

    [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
    private void DeallocateSlow(void* ptr, Layout layout)
    {
        ThrowIfDisposed();
        int order = CheckLiveBlock(ptr, layout, out int index);
        ref Region region = ref _regions[index];
        _lastRegion = index;
        ulong address = (ulong)ptr;
        Release(address, order, region.States + ((address - region.Start) >> MinShift), layout.Size, ref region);
    }

    /// <summary>Takes a checked live block back: parks it in its order's cache, or frees and merges it.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining | MethodImplOptions.AggressiveOptimization)]
    private void Release(ulong address, int order, byte* state, nuint userSize, ref Region region)
    {
        _userBytes -= Math.Min(_userBytes, userSize);
        _allocatedBytes -= (ulong)MinBlockSize << order;
        _liveBlocks--;
        if (order <= _maxCachedOrder)
        {
            OrderCache* cache = _caches + order;
            if (cache->Count < cache->Capacity)
            {
                *state = (byte)(StateCached | order);
                cache->Push((void*)address);
                return;
            }

            // A full cache lets the block through to the buddy lists: a run of frees then costs what the eager algorithm costs.
        }

        FreeAndMerge(address, order, in region);
    }

    /// <summary>
    /// Checks that <paramref name="ptr"/> is a live block whose size <paramref name="layout"/> maps to, and returns its
    /// order. Throws, naming the address, before anything changes.
    /// </summary>
    internal int CheckLiveBlock(void* ptr, Layout layout, out int index, bool checkLayout = true)
    {
        ulong address = (ulong)ptr;
        index = Regions.FindForFree(_regions, ptr);

        ref Region region = ref _regions[index];
        byte state = (address & ((ulong)MinBlockSize - 1)) == 0 ? region.States[(address - region.Start) >> MinShift] : (byte)0;
        if (state == 0)
        {
            ThrowHelper.ThrowArgument($"Cannot free {ThrowHelper.Hex(address)}: it is not the start of a block of this heap (an interior or never-allocated address).", nameof(ptr));
        }

        int order = OrderOfState(state);
        if ((state & StateAllocated) == 0)
        {
            ThrowHelper.ThrowInvalidOperation($"Cannot free {ThrowHelper.Hex(address)}: the block of {(ulong)MinBlockSize << order} bytes there is not allocated (a double free, or a free block never handed out).");
        }

        int expected = Orders.OrderFor(layout.Size, layout.Align, MinShift);
        if (checkLayout && expected != order)
        {
            ThrowHelper.ThrowArgument($"Cannot free {ThrowHelper.Hex(address)} with {layout}: that layout maps to a block of {(expected > MaxOrder ? "over 2^63" : ((ulong)MinBlockSize << expected).ToString(System.Globalization.CultureInfo.InvariantCulture))} bytes, but the block there has {(ulong)MinBlockSize << order} bytes.", nameof(layout));
        }

        return order;
    }

    private void FreeAndMerge(ulong address, int order, in Region region)
    {
        byte* states = region.States;
        ulong start = region.Start;
        states[(address - start) >> MinShift] = 0;

        // The buddy's state is read from the side table, never searched for: the crate's list scan is O(n) per free.
        while (order < MaxOrder)
        {
            ulong size = (ulong)MinBlockSize << order;
            ulong buddy = address ^ size;
            if (buddy < start || buddy + size > region.End)
            {
                break;
            }

            ref byte buddyState = ref states[(buddy - start) >> MinShift];
            if (buddyState != (StateFree | order))
            {
                break;
            }

            Unlink((FreeBlock*)buddy, order);
            buddyState = 0;
            address &= ~size;
            order++;
            if (_hardening != null)
            {
                PoisonMergedLinks(address + size); // hardening hook: the upper half's links are now inside the block
            }
        }

        states[(address - start) >> MinShift] = (byte)(StateFree | order);
        Push((FreeBlock*)address, order);
    }

    /// <summary>
    /// Resizes a block, in place whenever the buddy system allows: the same block size stays; a smaller one stays at the
    /// same address and gives the unused upper halves back to the free lists, unless a free block of a size in between
    /// waits elsewhere (the block then moves there, so the old block merges back whole); a larger one stays when every buddy above
    /// the block, up to the new size, is free and whole (the block absorbs them). Otherwise a new block is allocated, the
    /// bytes copied, and the old block freed.
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
        if (_hardening != null)
        {
            return HardenedReallocate(ptr, layout, newSize); // hardening hook (BuddyHeap.Hardening.cs)
        }

        ThrowIfDisposed();
        _ = new Layout(newSize, layout.Align); // validates the new size with the alignment before anything changes
        int order = CheckLiveBlock(ptr, layout, out int index);
        int newOrder = Orders.OrderFor(newSize, layout.Align, MinShift);
        if (newOrder == order || ResizeInPlace((ulong)ptr, order, newOrder, in _regions[index]))
        {
            _userBytes = _userBytes - Math.Min(_userBytes, layout.Size) + newSize;
            return ptr;
        }

        return Moves.AllocateCopyFree(this, ptr, layout, newSize);
    }

    /// <summary>
    /// Turns the live block at <paramref name="address"/> of <paramref name="order"/> into one of <paramref name="newOrder"/>
    /// at the same address when the buddy system allows it, and says whether it did. Shrinking does unless a free block
    /// of an order from <paramref name="newOrder"/> up to below <paramref name="order"/> waits elsewhere: moving into that
    /// hole lets the whole block merge back, where shrinking in place would split it for good (W6 in docs/benchmarks.md).
    /// Otherwise each upper half goes on its free list (it cannot merge, its buddy being the kept lower half). Growing can when the block is the lower
    /// buddy at every level up to <paramref name="newOrder"/> and each of those upper buddies is free and whole; nothing
    /// changes unless all are. O(orders) steps, no copy.
    /// </summary>
    internal bool ResizeInPlace(ulong address, int order, int newOrder, in Region region)
    {
        byte* states = region.States;
        ulong start = region.Start;
        if (newOrder < order)
        {
            ulong inBetween = ((1UL << (order - newOrder)) - 1) << newOrder;
            if ((_nonEmptyOrders & inBetween) != 0)
            {
                return false;
            }

            for (int level = order - 1; level >= newOrder; level--)
            {
                ulong upper = address + ((ulong)MinBlockSize << level);
                states[(upper - start) >> MinShift] = (byte)(StateFree | level);
                Push((FreeBlock*)upper, level);
            }
        }
        else
        {
            if (newOrder > MaxOrder || (address & (((ulong)MinBlockSize << newOrder) - 1)) != 0
                || ((ulong)MinBlockSize << newOrder) > region.End - address)
            {
                return false;
            }

            for (int level = order; level < newOrder; level++)
            {
                ulong upper = address + ((ulong)MinBlockSize << level);
                if (states[(upper - start) >> MinShift] != (byte)(StateFree | level))
                {
                    return false;
                }
            }

            for (int level = order; level < newOrder; level++)
            {
                ulong upper = address + ((ulong)MinBlockSize << level);
                Unlink((FreeBlock*)upper, level);
                states[(upper - start) >> MinShift] = 0;
            }
        }

        states[(address - start) >> MinShift] = (byte)(StateAllocated | newOrder);
        _allocatedBytes = _allocatedBytes - ((ulong)MinBlockSize << order) + ((ulong)MinBlockSize << newOrder);
        return true;
    }

    /// <summary>False: a BuddyHeap is single-threaded (use one thread at a time, or wrap it in <see cref="LockedHeap"/>).</summary>
    public bool IsThreadSafe => false;

    /// <summary>A snapshot of the heap's accounting, including the free blocks per order (<c>/proc/buddyinfo</c>).</summary>
    /// <remarks>Costs O(free blocks + cached blocks × orders); not for hot paths. <see cref="HeapStats.FreeBlocksByOrder"/>
    /// and <see cref="HeapStats.LargestFreeBlock"/> describe the free blocks as an allocation can obtain them now: cached
    /// blocks counted as the blocks they merge into (what <see cref="Trim"/>, which a failing allocation runs, would leave).
    /// The cached bytes are also in <see cref="HeapStats.CachedBytes"/> and in <see cref="HeapStats.FreeBytes"/>.</remarks>
    public HeapStats Stats
    {
        get
        {
            ThrowIfDisposed();
            var byOrder = new long[MaxOrder + 1];
            CountFreeLists(byOrder);
            var cached = new List<nint>[MaxOrder + 1];
            for (int order = 0; order <= _maxCachedOrder; order++)
            {
                CollectCached(_caches + order, order, cached);
            }

            MergeCachedInto(byOrder, cached);
            return StatsOf(byOrder, CachedBytesInCaches(), _userBytes, _allocatedBytes, _liveBlocks, _allocations, _failedAllocations);
        }
    }

    /// <summary>Counts the blocks of every buddy list into <paramref name="byOrder"/>.</summary>
    internal void CountFreeLists(long[] byOrder)
    {
        for (int order = 0; order <= MaxOrder; order++)
        {
            for (FreeBlock* block = _heads[order]; block != null; block = block->Next)
            {
                byOrder[order]++;
            }
        }
    }

    /// <summary>Appends the blocks of one cache to <paramref name="cached"/>[<paramref name="order"/>].</summary>
    internal static void CollectCached(OrderCache* cache, int order, List<nint>?[] cached)
    {
        if (cache->Head == null)
        {
            return;
        }

        List<nint> list = cached[order] ??= [];
        for (CachedBlock* block = cache->Head; block != null; block = block->Next)
        {
            list.Add((nint)block);
        }
    }

    /// <summary>
    /// Adds cached blocks to the free-list counts <paramref name="byOrder"/> as the blocks they would merge into, without
    /// changing the heap: per order, a cached block whose buddy is cached too or free in a buddy list merges with it and
    /// goes on as one block of the next order; the others stay. The result is what returning them all would leave (a full
    /// merge does not depend on the order of the frees). Returns the highest order that holds a block afterwards, -1 for none.
    /// </summary>
    internal int MergeCachedInto(long[]? byOrder, List<nint>?[] cached)
    {
        int highest = _nonEmptyOrders == 0 ? -1 : 63 - BitOperations.LeadingZeroCount(_nonEmptyOrders);
        var pending = new HashSet<nint>();
        var next = new HashSet<nint>();
        for (int level = 0; level <= MaxOrder; level++)
        {
            if (level < cached.Length && cached[level] is { } atLevel)
            {
                pending.UnionWith(atLevel);
            }

            if (pending.Count == 0)
            {
                continue;
            }

            ulong size = (ulong)MinBlockSize << level;
            foreach (nint block in pending)
            {
                ulong address = (ulong)block;
                ulong buddy = address ^ size;
                ref Region region = ref RegionOf(address);
                bool inRegion = level < MaxOrder && buddy >= region.Start && buddy + size <= region.End;
                if (inRegion && pending.Contains((nint)buddy))
                {
                    if (address < buddy)
                    {
                        next.Add((nint)address);
                    }

                    continue;
                }

                if (inRegion && region.States[(buddy - region.Start) >> MinShift] == (byte)(StateFree | level))
                {
                    if (byOrder != null)
                    {
                        byOrder[level]--;
                    }

                    next.Add((nint)(address & ~size));
                    continue;
                }

                if (byOrder != null)
                {
                    byOrder[level]++;
                }

                highest = Math.Max(highest, level);
            }

            (pending, next) = (next, pending);
            next.Clear();
        }

        return highest;
    }

    /// <summary>Builds the stats record from the merged free-block counts and the counters.</summary>
    internal HeapStats StatsOf(long[] byOrder, ulong cached, ulong userBytes, ulong allocatedBytes, long liveBlocks, long allocations, long failed)
    {
        ulong listed = 0;
        ulong largest = 0;
        int highest = 0;
        for (int order = 0; order <= MaxOrder; order++)
        {
            if (byOrder[order] != 0)
            {
                ulong size = (ulong)MinBlockSize << order;
                listed += size * (ulong)byOrder[order];
                largest = size;
                highest = order;
            }
        }

        int orders = _totalBytes == 0 ? 0 : Math.Max(highest, Orders.FloorLog2(_totalBytes) - MinShift) + 1;
        return new HeapStats
        {
            UserBytes = userBytes,
            AllocatedBytes = allocatedBytes,
            TotalBytes = _totalBytes,
            FreeBytes = listed,
            CachedBytes = cached,
            MetadataBytes = _metadataBytes,
            LargestFreeBlock = largest,
            LiveBlocks = liveBlocks,
            Allocations = allocations,
            FailedAllocations = failed,
            MinBlockSize = MinBlockSize,
            ResidentBytes = ResidentBytesOfRegions(),
            FreeBlocksByOrder = byOrder.AsSpan(0, orders).ToArray(),
        };
    }

    /// <summary>
    /// What a failed allocation reports (<see cref="HeapExhaustedException.For"/>) without walking the buddy lists: the free
    /// bytes from the counters and the largest block an allocation can obtain (the highest non-empty list, or what the
    /// cached blocks merge into).
    /// </summary>
    (ulong FreeBytes, ulong LargestFreeBlock) IExhaustionInfoSource.ExhaustionInfo()
    {
        ThrowIfDisposed();
        int highest;
        if (CachedBytesInCaches() == 0)
        {
            highest = _nonEmptyOrders == 0 ? -1 : 63 - BitOperations.LeadingZeroCount(_nonEmptyOrders);
        }
        else
        {
            var cached = new List<nint>[MaxOrder + 1];
            for (int order = 0; order <= _maxCachedOrder; order++)
            {
                CollectCached(_caches + order, order, cached);
            }

            highest = MergeCachedInto(null, cached);
        }

        return (_totalBytes - _allocatedBytes, highest < 0 ? 0 : (ulong)MinBlockSize << highest);
    }

    /// <summary>Frees the metadata and any region the heap owns (see <see cref="Create"/>). Later calls throw <see cref="ObjectDisposedException"/>.</summary>
    /// <remarks>Calling it more than once is harmless. Memory added with <see cref="AddRegion(void*, nuint)"/> stays the caller's.</remarks>
    public void Dispose()
    {
        if (_disposed)
        {
            return;
        }

        if (_hardening != null)
        {
            ReportLeaks(); // hardening hook (BuddyHeap.Hardening.cs)
        }

        _disposed = true;
        Regions.FreeAll(ref _regions);
        _nonEmptyOrders = 0;
        new Span<nint>(_headsArray).Clear();
        _maxCachedOrder = -1;
        new Span<OrderCache>(_cacheArray).Clear();
        Regions.DisposeOwned(_ownedRegions);
        _rootedRegions.Clear();
        _purgeable.Clear();
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal void ThrowIfDisposed()
    {
        if (_disposed)
        {
            ThrowHelper.ThrowObjectDisposed(this);
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private void Push(FreeBlock* block, int order)
    {
        FreeBlock* head = _heads[order];
        block->Next = head;
        block->Prev = null;
        if (head != null)
        {
            head->Prev = block;
        }

        _heads[order] = block;
        _nonEmptyOrders |= 1UL << order;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private void Unlink(FreeBlock* block, int order)
    {
        FreeBlock* next = block->Next;
        FreeBlock* prev = block->Prev;
        if (prev != null)
        {
            prev->Next = next;
        }
        else
        {
            _heads[order] = next;
            if (next == null)
            {
                _nonEmptyOrders &= ~(1UL << order);
            }
        }

        if (next != null)
        {
            next->Prev = prev;
        }
    }

    /// <summary>The region holding <paramref name="address"/>, which must be inside one.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private ref Region RegionOf(ulong address) => ref Regions.Of(_regions, address, ref _lastRegion);

    /// <summary>
    /// The state byte of the granule at <paramref name="address"/>, or null when the address is not 16-aligned inside a
    /// region. Reads the region table without writing the heap, so thread-safe fronts may call it without their lock;
    /// <paramref name="hint"/> is the caller's own guess of the region index, updated on a miss.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal byte* StateSlot(ulong address, ref int hint)
    {
        Region[] regions = _regions;
        int last = hint;
        if ((uint)last < (uint)regions.Length)
        {
            ref Region region = ref regions[last];
            ulong offset = address - region.Start;
            if (offset < region.End - region.Start)
            {
                return (offset & ((ulong)MinBlockSize - 1)) == 0 ? region.States + (offset >> MinShift) : null;
            }
        }

        return StateSlotSlow(regions, address, ref hint);
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static byte* StateSlotSlow(Region[] regions, ulong address, ref int hint)
    {
        int index = Regions.Find(regions, address);
        if (index < 0 || (address & ((ulong)MinBlockSize - 1)) != 0)
        {
            return null;
        }

        hint = index;
        return regions[index].States + ((address - regions[index].Start) >> MinShift);
    }

    /// <summary>A copy of region <paramref name="index"/> (its bounds and side table), for fronts that keep a hot region.</summary>
    internal Region RegionAt(int index) => _regions[index];

    /// <summary>How many regions the heap has.</summary>
    internal int RegionCount => _regions.Length;

    /// <summary>Binary search for the region holding <paramref name="address"/>; -1 when none does.</summary>
    private int FindRegion(ulong address) => Regions.Find(_regions, address);

    /// <summary>The two links a free block holds in its first 16 bytes.</summary>
    internal struct FreeBlock
    {
        public FreeBlock* Next;
        public FreeBlock* Prev;
    }

    /// <summary>One region: its 16-byte-aligned bounds and its side table of one state byte per granule.</summary>
    /// <remarks>The side table is native memory (zeroed, freed by <see cref="Free"/> when the heap is disposed), not a
    /// managed array: a heap that serves a process's malloc must not touch the GC heap when it grows, and a large table
    /// costs only the pages its states touch.</remarks>
    internal readonly struct Region : IRegion
    {
        public Region(ulong start, ulong end)
        {
            Start = start;
            End = end;
            Length = (nuint)checked((end - start) >> MinShift);
            States = (byte*)NativeMemory.AllocZeroed(Length);
        }

        public ulong Start { get; }

        public ulong End { get; }

        /// <summary>Bytes in the side table: one per granule.</summary>
        public nuint Length { get; }

        public byte* States { get; }

        /// <summary>Frees the side table; the region must not be used afterwards.</summary>
        public void Free() => NativeMemory.Free(States);
    }
}
