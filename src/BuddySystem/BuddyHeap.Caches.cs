namespace BuddySystem;

// The lazy layer: bounded per-order caches of free blocks in front of the buddy lists (Barkley & Lee's lazy buddy;
// Linux's per-CPU page lists). A cached block is free but not merged; its side-table state is StateCached | order, so
// the double-free check (state & StateAllocated) == 0 stays exact for it.
public sealed unsafe partial class BuddyHeap
{
    /// <summary>State of a block parked in a cache: neither free (in a buddy list) nor allocated; order in the low 5 bits.</summary>
    internal const byte StateCached = 0x20;

    /// <summary>The order bits of a cached state; cached orders are at most <see cref="BuddyHeapOptions.MaxCachedOrderLimit"/>.</summary>
    internal const byte CachedOrderMask = 0x1F;

    /// <summary>The options the heap was created with.</summary>
    public BuddyHeapOptions Options { get; }

    /// <summary>The order of the block whose (non-zero) state byte is <paramref name="state"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static int OrderOfState(byte state)
        => (state & (StateFree | StateAllocated)) != 0 ? state & OrderMask : state & CachedOrderMask;

    /// <summary>Whether <paramref name="state"/> marks a block parked in a cache.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static bool IsCachedState(byte state) => (state & (StateFree | StateAllocated | StateCached)) == StateCached;

    /// <summary>
    /// Returns every cached block to the buddy lists, merging each with its buddy as the eager algorithm does, then returns
    /// the pages of the free blocks of at least <see cref="BuddyHeapOptions.PurgeThreshold"/> bytes to the operating system.
    /// Afterwards the heap is fully merged: with no live block, <see cref="HeapStats.LargestFreeBlock"/> is the largest
    /// aligned block of a region.
    /// </summary>
    /// <remarks><para>Costs O(cached blocks × orders), plus one <c>madvise</c> call per free block of at least the threshold.
    /// Allocate returns the cached blocks by itself before it would return null (without the purge), so a cache never makes
    /// an allocation fail that the buddy lists could serve after merging.</para>
    /// <para>The purge (Linux; see <see cref="BuddyHeapOptions.PurgeThreshold"/>) gives back every whole page of such a block
    /// but the one holding its free-list links, with <c>MADV_DONTNEED</c>: the resident memory drops at once, and a page of a
    /// purged block reads as zeros when touched again. Live blocks are never touched. Only the heap's own native memory and
    /// regions given as a <see cref="NativeRegion"/> are purged; a block still free at the next call is advised again.</para></remarks>
    /// <exception cref="ObjectDisposedException">The heap was disposed.</exception>
    public void Trim()
    {
        ThrowIfDisposed();
        FlushAllCaches();
        PurgeFreeBlocks();
    }

    /// <summary>Returns every cached block to the buddy lists, merging (the first half of <see cref="Trim"/>).</summary>
    private void FlushAllCaches()
    {
        for (int order = 0; order <= _maxCachedOrder; order++)
        {
            FlushCache(_caches + order, order, 0);
        }
    }

    /// <summary>Bytes parked in this heap's own caches.</summary>
    private ulong CachedBytesInCaches()
    {
        ulong bytes = 0;
        for (int order = 0; order <= _maxCachedOrder; order++)
        {
            bytes += (ulong)_caches[order].Count * ((ulong)MinBlockSize << order);
        }

        return bytes;
    }

    /// <summary>
    /// Refills the cache of <paramref name="order"/> with one batch: the smallest buddy-list block of at least that order,
    /// split down to at most 2^BatchShift blocks' worth and cut into blocks of the order, all marked cached. Returns false
    /// when the buddy lists hold no block of that order or larger.
    /// </summary>
    /// <remarks>Cutting one block into many costs one state byte and one link per block and no list operation per block:
    /// that is why a batch refill is cheaper than as many single allocations.</remarks>
    internal bool RefillCache(OrderCache* cache, int order)
    {
        ulong candidates = _nonEmptyOrders >> order;
        if (candidates == 0)
        {
            return false;
        }

        int found = order + BitOperations.TrailingZeroCount(candidates);
        int carveOrder = Math.Min(found, order + cache->BatchShift);
        FreeBlock* block = TakeSplitDown(found, carveOrder, out byte* states, out ulong start);

        // Pushed from the top down so that the lowest address pops first: consecutive allocations get consecutive blocks.
        ulong size = (ulong)MinBlockSize << order;
        int count = 1 << (carveOrder - order);
        CachedBlock* head = cache->Head;
        byte cached = (byte)(StateCached | order);
        for (int i = count - 1; i >= 0; i--)
        {
            var piece = (CachedBlock*)((ulong)block + ((ulong)i * size));
            states[((ulong)piece - start) >> MinShift] = cached;
            piece->Next = head;
            head = piece;
        }

        cache->Head = head;
        cache->Count += count;
        return true;
    }

    /// <summary>
    /// Returns all but <paramref name="keep"/> blocks of a cache to the buddy lists, merging: the most recently parked
    /// ones, because a singly linked stack reaches them without walking over the others.
    /// </summary>
    internal void FlushCache(OrderCache* cache, int order, int keep)
    {
        // The surplus is popped off the head in one pass, so the blocks kept are never walked. Returned in chunks, each
        // merged level by level: blocks of the chunk that are buddies of each other merge without touching a free list,
        // so a run of neighbours (what a batch refill cut) goes back as one block.
        int surplus = cache->Count - Math.Max(keep, 0);
        nint* chunk = stackalloc nint[FlushChunk];
        while (surplus > 0)
        {
            CachedBlock* head = cache->Head;
            int count = 0;
            while (count < FlushChunk && count < surplus)
            {
                chunk[count++] = (nint)head;
                head = head->Next;
            }

            cache->Head = head;
            cache->Count -= count;
            surplus -= count;
            ReturnMerged(chunk, count, order);
        }
    }

    /// <summary>Blocks a flush handles at once (a stack buffer of their addresses).</summary>
    private const int FlushChunk = 64;

    /// <summary>
    /// Transient state of a block being returned by <see cref="ReturnMerged"/>: free and allocated bits both set, a
    /// combination no other code path writes, and it never outlives the call.
    /// </summary>
    private const byte StatePending = StateFree | StateAllocated;

    /// <summary>
    /// Returns cached blocks of <paramref name="order"/> to the buddy lists. All are first marked pending; then, one order at
    /// a time, a pending block whose buddy is pending too merges with it without any list operation, one whose buddy is on
    /// a free list unlinks it and merges, and the others are pushed. The result is the same fully merged heap as freeing
    /// them one by one.
    /// </summary>
    private void ReturnMerged(nint* blocks, int count, int order)
    {
        // One region (the usual case): no region lookup per block.
        Region[] regions = _regions;
        bool single = regions.Length == 1;
        for (int i = 0; i < count; i++)
        {
            ref Region region = ref single ? ref regions[0] : ref RegionOf((ulong)blocks[i]);
            region.States[((ulong)blocks[i] - region.Start) >> MinShift] = (byte)(StatePending | order);
        }

        for (int level = order; count > 0; level++)
        {
            int next = 0;
            ulong size = (ulong)MinBlockSize << level;
            for (int i = 0; i < count; i++)
            {
                ulong address = (ulong)blocks[i];
                ref Region region = ref single ? ref regions[0] : ref RegionOf(address);
                byte* states = region.States;
                ulong start = region.Start;
                ref byte state = ref states[(address - start) >> MinShift];
                if (state != (byte)(StatePending | level))
                {
                    continue; // merged into its buddy earlier in this level
                }

                ulong buddy = address ^ size;
                if (level < MaxOrder && buddy >= start && buddy + size <= region.End)
                {
                    ref byte buddyState = ref states[(buddy - start) >> MinShift];
                    if (buddyState == (byte)(StatePending | level) || buddyState == (byte)(StateFree | level))
                    {
                        if (buddyState == (byte)(StateFree | level))
                        {
                            Unlink((FreeBlock*)buddy, level);
                        }

                        state = 0;
                        buddyState = 0;
                        ulong parent = address & ~size;
                        if (_hardening != null)
                        {
                            PoisonMergedLinks(parent + size); // hardening hook: the upper half's link is now inside the block
                        }

                        states[(parent - start) >> MinShift] = (byte)(StatePending | (level + 1));
                        blocks[next++] = (nint)parent;
                        continue;
                    }
                }

                state = (byte)(StateFree | level);
                Push((FreeBlock*)address, level);
            }

            count = next;
        }
    }

    /// <summary>One order's cache: a LIFO stack linked through the blocks' first word, with its bound.</summary>
    internal struct OrderCache
    {
        /// <summary>The most recently parked block; null when empty.</summary>
        public CachedBlock* Head;

        /// <summary>Blocks on the stack.</summary>
        public int Count;

        /// <summary>The bound: a free finding the cache full goes to the buddy lists instead (a single heap) or flushes half the
        /// cache first (a thread cache of <see cref="ConcurrentHeap"/>, on its locked path).</summary>
        public int Capacity;

        /// <summary>log2 of the blocks one refill cuts at most (half the capacity, rounded down to a power of two).</summary>
        public int BatchShift;

        /// <summary>Parks <paramref name="block"/> on top of the stack (the caller checked the bound).</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public void Push(void* block)
        {
            ((CachedBlock*)block)->Next = Head;
            Head = (CachedBlock*)block;
            Count++;
        }

        /// <summary>Takes the most recently parked block; the stack must not be empty.</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public CachedBlock* Pop()
        {
            CachedBlock* block = Head;
            Head = block->Next;
            Count--;
            return block;
        }

        /// <summary>Sets the bound and the batch size of an empty cache.</summary>
        public void Initialize(int capacity)
        {
            Head = null;
            Count = 0;
            Capacity = capacity;
            BatchShift = Orders.FloorLog2((ulong)Math.Max(1, capacity >> 1));
        }
    }

    /// <summary>The link a cached block holds in its first 8 bytes.</summary>
    internal struct CachedBlock
    {
        public CachedBlock* Next;
    }
}
