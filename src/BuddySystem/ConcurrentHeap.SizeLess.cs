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
    /// The core's side-table byte of the block at <paramref name="ptr"/>, or null when it is outside every region or not on
    /// a 16-byte granule: for the hardened mode of <c>libbuddymalloc.so</c>, which reads whether a buddy block starts at an
    /// address (<see cref="BuddyHeap.StateAllocated"/>).
    /// </summary>
    internal byte* StateSlotOf(void* ptr) => _core.StateSlot((ulong)ptr, ref t_sizeLessRegion);

    /// <summary>The size-class tier's state bytes and page map of the region starting at <paramref name="start"/>, for the C
    /// loader of <c>libbuddymalloc.so</c> (see <see cref="SlabTier.TryGetRegionMetadata"/>); false without the tier.</summary>
    internal bool TryGetObjectMetadata(void* start, out byte* states, out byte* marks, out nint* pages)
    {
        states = null;
        marks = null;
        pages = null;
        return _tier != null && _tier.TryGetRegionMetadata((ulong)start, out states, out marks, out pages);
    }

    /// <summary>For the C loader's free from another thread, which pushed on the thread-free list of a slab that may be
    /// full: the slab goes back to its owner's list of slabs with free objects (see <see cref="SlabTier.ReviveFullSlab"/>).</summary>
    internal void ReviveFullSlab(void* slab) => _tier?.ReviveFullSlab(slab);

    /// <summary>For tests: how many owners the tier recognises by their stacks (see <see cref="SlabTier.StackRecognisedOwners"/>).</summary>
    internal int StackRecognisedOwners => _tier?.StackRecognisedOwners ?? 0;

    /// <summary>For tests: the tier's <see cref="SlabTier.ClaimAndPushAsAfterStaleRead"/>.</summary>
    internal void ClaimAndPushAsAfterStaleRead(void* ptr)
        => (_tier ?? throw new InvalidOperationException("The heap has no size-class tier.")).ClaimAndPushAsAfterStaleRead(ptr);

    /// <summary>The id the calling thread's slabs name as their owner (0 without the size-class tier), for the C loader's
    /// caches, which take only the objects of their own thread's slabs.</summary>
    internal nint CurrentSlabOwnerId() => _tier?.CurrentOwnerId() ?? 0;

    /// <summary>
    /// Refills a cache of class objects that lives outside this heap (the C loader's per-thread cache of
    /// <c>libbuddymalloc.so</c>) with up to <paramref name="count"/> objects of class <paramref name="index"/>, taken on the
    /// calling thread's slabs; each is marked as waiting outside (<see cref="SlabTier.OutsideCachedBit"/>), so a free of it
    /// before the cache hands it out is named a double free.
    /// </summary>
    /// <returns>False when not one object could be had (the heap is full).</returns>
    /// <remarks>Objects in such a cache count as live in <see cref="Stats"/>: the heap cannot see which of them the cache has
    /// handed out.</remarks>
    internal bool RefillClassCache(BuddyHeap.OrderCache* cache, int index, int count)
        => RequireTier().FillOutsideCache(cache, index, count) > 0;

    /// <summary>Frees the objects of an outside class cache beyond <paramref name="keep"/> (see <see cref="RefillClassCache"/>).</summary>
    /// <exception cref="InvalidOperationException">An object on the list is not one of class <paramref name="index"/> waiting
    /// in a cache (the list was overwritten, e.g. by a write after free): nothing was freed.</exception>
    internal void FlushClassCache(BuddyHeap.OrderCache* cache, int index, int keep) => RequireTier().FlushOutsideCache(cache, index, keep);

    private SlabTier RequireTier() => _tier ?? throw new InvalidOperationException("This heap has no size-class tier (BuddyHeapOptions.SizeClassSlabs).");

    /// <summary>Takes the core's lock and keeps it until <see cref="ExitAfterFork"/>: a process's <c>fork</c> then never
    /// copies the heap in the middle of a change (<c>pthread_atfork</c>'s prepare handler).</summary>
    internal void EnterForFork() => _lock.Enter();

    /// <summary>Releases the lock taken by <see cref="EnterForFork"/>, in the parent and in the child after <c>fork</c>.</summary>
    internal void ExitAfterFork() => _lock.Exit();
}
