namespace BuddySystem;

public sealed unsafe partial class ConcurrentHeap
{
    // The region this thread last looked up for a size-less call (an index into the core's region table).
    [ThreadStatic]
    private static int t_sizeLessRegion;

    /// <summary>
    /// Frees a block without its layout, as C's <c>free(p)</c>: the block's size is read from the side table, so no
    /// per-allocation header is needed. Safe from any thread, whichever thread allocated the block.
    /// </summary>
    /// <param name="ptr">A live block of this heap.</param>
    /// <exception cref="ArgumentNullException"><paramref name="ptr"/> is null.</exception>
    /// <exception cref="ArgumentException"><paramref name="ptr"/> is outside every region or not the start of a block; the heap is unchanged.</exception>
    /// <exception cref="InvalidOperationException">The block is not allocated (a double free); the heap is unchanged.</exception>
    /// <exception cref="ObjectDisposedException">The heap was disposed.</exception>
    /// <remarks>The user-byte counter of <see cref="Stats"/> is charged the whole block for such a free (the requested
    /// size is not known); the other counters are exact. Misuse is caught as by <see cref="Deallocate(void*, Layout)"/>.</remarks>
    public void Deallocate(void* ptr) => Deallocate(ptr, LayoutOfLiveBlock(ptr));

    /// <summary>The bytes usable in a live block: its whole block size (at least the size it was allocated with).</summary>
    /// <param name="ptr">A live block of this heap.</param>
    /// <returns>The block's size in bytes.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="ptr"/> is null.</exception>
    /// <exception cref="ArgumentException"><paramref name="ptr"/> is outside every region or not the start of a block.</exception>
    /// <exception cref="InvalidOperationException">The block is not allocated.</exception>
    /// <exception cref="ObjectDisposedException">The heap was disposed.</exception>
    /// <exception cref="NotSupportedException">The heap is hardened (a block's usable bytes end at its canary).</exception>
    public nuint UsableSize(void* ptr) => LayoutOfLiveBlock(ptr).Size;

    /// <summary>
    /// The layout (block size, alignment 1) of the live block at <paramref name="ptr"/>, read from the side table without
    /// the lock; anything else is checked under the lock, which throws naming the address.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private Layout LayoutOfLiveBlock(void* ptr)
    {
        if (_core.IsHardened)
        {
            ThrowHelper.ThrowNotSupported("A hardened ConcurrentHeap frees and sizes blocks only with their layout: its canary checks need the requested size.");
        }

        SlabTier? tier = _tier;
        if (tier != null && tier.HoldsInSlab(ptr))
        {
            return tier.LayoutOfLiveBlock(ptr);
        }

        byte* state = _core.StateSlot((ulong)ptr, ref t_sizeLessRegion);
        if (state != null)
        {
            byte value = *state;
            if ((value & (BuddyHeap.StateFree | BuddyHeap.StateAllocated)) == BuddyHeap.StateAllocated)
            {
                return new Layout(BuddyHeap.MinBlockSize << (value & BuddyHeap.OrderMask), 1);
            }
        }

        return LayoutOfLiveBlockSlow(ptr);
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private Layout LayoutOfLiveBlockSlow(void* ptr)
    {
        lock (_lock)
        {
            ThrowIfDisposed();
            // Not a live block: the smallest layout makes CheckLiveBlock name what is wrong (null, outside, interior,
            // not allocated) before its layout check could be reached; a live block seen here raced with the fast read.
            int order = _core.CheckLiveBlock(ptr, new Layout(BuddyHeap.MinBlockSize, 1), out _, checkLayout: false);
            return new Layout(BuddyHeap.MinBlockSize << order, 1);
        }
    }

    /// <summary>
    /// The side-table byte of the block at <paramref name="ptr"/>, or null when it is outside every region or not on a
    /// 16-byte granule. For the process allocator's C loader (libbuddymalloc.so), which keeps per-thread lists of freed
    /// small blocks and reads and writes these bytes itself, with the encodings of <see cref="BuddyHeap.StateAllocated"/>
    /// and <see cref="BuddyHeap.StateCached"/>, exactly as this heap's own thread caches do: a block in such a list is
    /// "cached", so a second free of it fails the "allocated" check and is reported.
    /// </summary>
    internal byte* StateSlotOf(void* ptr) => _core.StateSlot((ulong)ptr, ref t_sizeLessRegion);

    /// <summary>
    /// Refills an order cache that lives outside this heap (the C loader's per-thread cache of the process allocator) with
    /// one batch cut from the buddy lists, every block marked cached, as this heap refills its own thread caches.
    /// </summary>
    /// <returns>False when no block of the order is free even after returning every thread's cached blocks.</returns>
    /// <remarks>Blocks the outside cache hands out and takes back are not seen by this heap's counters (the owner of the cache
    /// counts them); its side-table writes follow the rules of <see cref="StateSlotOf"/>.</remarks>
    internal bool RefillOutsideCache(BuddyHeap.OrderCache* cache, int order)
    {
        lock (_lock)
        {
            ThrowIfDisposed();
            return _core.RefillCache(cache, order) || (ReturnCachesForRetryLocked() && _core.RefillCache(cache, order));
        }
    }

    /// <summary>Returns the blocks of an outside order cache beyond <paramref name="keep"/> to the buddy lists, merged.</summary>
    /// <exception cref="InvalidOperationException">A block on the list is not a cached block of <paramref name="order"/> (the
    /// list was overwritten, e.g. by a write after free): nothing was returned.</exception>
    internal void FlushOutsideCache(BuddyHeap.OrderCache* cache, int order, int keep)
    {
        lock (_lock)
        {
            ThrowIfDisposed();
            // The surplus (popped off the head) is checked before anything changes: the core trusts a cache's blocks.
            byte cached = (byte)(BuddyHeap.StateCached | order);
            BuddyHeap.CachedBlock* block = cache->Head;
            for (int i = Math.Max(keep, 0); i < cache->Count; i++)
            {
                byte* state = block == null ? null : StateSlotOf(block);
                if (state == null || *state != cached)
                {
                    throw new InvalidOperationException($"the cached block 0x{(ulong)block:x} of order {order} is not cached (its list was overwritten after free?)");
                }

                block = block->Next;
            }

            _core.FlushCache(cache, order, keep);
        }
    }

    /// <summary>Takes the core's lock and keeps it until <see cref="ExitAfterFork"/>: a process's <c>fork</c> then never
    /// copies the heap in the middle of a change (<c>pthread_atfork</c>'s prepare handler).</summary>
    internal void EnterForFork() => _lock.Enter();

    /// <summary>Releases the lock taken by <see cref="EnterForFork"/>, in the parent and in the child after <c>fork</c>.</summary>
    internal void ExitAfterFork() => _lock.Exit();
}
