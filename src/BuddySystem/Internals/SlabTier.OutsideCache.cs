namespace BuddySystem.Internals;

internal sealed unsafe partial class SlabTier
{
    /// <summary>
    /// The bit an object's state byte carries while the object waits in a cache outside the tier: the per-thread caches of
    /// class objects that <c>libbuddymalloc.so</c>'s C loader keeps. To the tier such an object stays live (its slab cannot
    /// empty, <see cref="Validate"/> and the snapshot count it), but a free of it fails the compare-exchange from its class
    /// state and is named a double free, so misuse stays exact while the object sits in C.
    /// </summary>
    internal const byte OutsideCachedBit = 0x80;

    /// <summary>Whether state byte <paramref name="state"/> is a live object handed to a caller (not 0, not waiting in an
    /// outside cache).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static bool IsHandedOut(byte state) => state != 0 && state < OutsideCachedBit;

    /// <summary>
    /// Allocates up to <paramref name="count"/> objects of class <paramref name="index"/> on the calling thread's slabs and
    /// pushes them on <paramref name="cache"/>, a cache outside the tier (the C loader's per-thread cache of
    /// <c>libbuddymalloc.so</c>), each marked as waiting there (<see cref="OutsideCachedBit"/>); returns how many. The
    /// objects of the thread's first slab are taken in one busy window; when it runs dry, one object goes through
    /// <see cref="Allocate"/> (which refills the slab or moves on to another), then the batch goes on.
    /// </summary>
    internal int FillOutsideCache(BuddyHeap.OrderCache* cache, int index, int count)
    {
        var layout = new Layout(SizeClasses.SizeOf(index), 1);
        byte live = (byte)(index + 1);
        int hint = -1;
        int added = 0;
        while (added < count)
        {
            ThreadSlabs? slabs = t_slabs;
            if (slabs != null && slabs.HeapKey == _threadKey)
            {
                ClassSlabs* sizeClass = slabs.Classes + index;
                slabs.EnterBusy();
                Slab* slab = sizeClass->Head;
                if (!slabs.IsPaused && slab != null)
                {
                    // A state byte of a free object changes only here (its owner); a cached one only in this cache's
                    // thread: a plain store keeps every other free of the object failing its exchange.
                    while (added < count && slab->Free != null)
                    {
                        FreeObject* taken = TakeObject(slabs, sizeClass, slab, index, layout.Size, OutsideCachedBit);
                        if (taken == null)
                        {
                            break;
                        }

                        cache->Push(taken);
                        added++;
                    }
                }

                slabs.ExitBusy();
                if (added == count)
                {
                    break;
                }
            }

            void* item = Allocate(layout);
            if (item == null)
            {
                break;
            }

            // Just handed out here, so its region is in the table read after it.
            byte* state = StateSlot(Volatile.Read(ref _regions), (ulong)item, ref hint);
            if (Interlocked.CompareExchange(ref *state, (byte)(live | OutsideCachedBit), live) != live)
            {
                ThrowHelper.ThrowInvalidOperation($"the object {ThrowHelper.Hex((ulong)item)} of {layout.Size} bytes was freed before it reached the cache (a free of an address never handed out?)");
            }

            cache->Push(item);
            added++;
        }

        return added;
    }

    /// <summary>
    /// Frees the objects of an outside cache beyond <paramref name="keep"/> (see <see cref="FillOutsideCache"/>), after
    /// checking every one of them: nothing is freed when one is not an object of class <paramref name="index"/> waiting in
    /// a cache. An object in the thread's hot region is freed as the lock-free free does (its state goes to 0 with a plain
    /// store: only this cache's thread changes a cached state); any other goes back to live and through
    /// <see cref="Deallocate"/>.
    /// </summary>
    /// <exception cref="InvalidOperationException">The cache's list was overwritten (e.g. a write after free); nothing was freed.</exception>
    internal void FlushOutsideCache(BuddyHeap.OrderCache* cache, int index, int keep)
    {
        ThrowIfDisposed();
        keep = Math.Max(keep, 0);
        byte live = (byte)(index + 1);
        byte cached = (byte)(live | OutsideCachedBit);
        Region[] regions = Volatile.Read(ref _regions);
        int hint = -1;
        BuddyHeap.CachedBlock* item = cache->Head;
        for (int i = keep; i < cache->Count; i++)
        {
            ulong address = (ulong)item;
            bool inside = (uint)hint < (uint)regions.Length && Regions.Contains(ref regions[hint], address);
            hint = inside ? hint : Regions.Find(regions, address);
            if (hint < 0 || (address & 15) != 0 || regions[hint].StateBase[address >> GranuleShift] != cached)
            {
                ThrowHelper.ThrowInvalidOperation($"the cached object {ThrowHelper.Hex(address)} of {SizeClasses.SizeOf(index)} bytes is not cached (its list was overwritten after free?)");
            }

            item = item->Next;
        }

        // Each goes back to live (only this cache's thread changes a cached state), then through the tier's free: the
        // owner's takes no locked instruction, another thread's slab gets it through its remote mark.
        var layout = new Layout(SizeClasses.SizeOf(index), 1);
        while (cache->Count > keep)
        {
            ulong address = (ulong)cache->Pop();
            *StateSlot(regions, address, ref hint) = live;
            Deallocate((void*)address, layout);
        }
    }

    /// <summary>
    /// The metadata of the region that starts at <paramref name="start"/>, for a reader outside managed code (the C loader):
    /// its state bytes and remote marks, indexed by (address − start) / 16, and its page map, indexed by
    /// (address − start) / 1 KiB (0, a slab's descriptor, or an odd tagged length). False when no region starts there.
    /// </summary>
    internal bool TryGetRegionMetadata(ulong start, out byte* states, out byte* marks, out nint* pages)
    {
        foreach (Region region in Volatile.Read(ref _regions))
        {
            if (region.Start == start && (start & ((1UL << PageShift) - 1)) == 0)
            {
                states = region.States;
                marks = region.Marks;
                pages = region.Pages;
                return true;
            }
        }

        states = null;
        marks = null;
        pages = null;
        return false;
    }

    /// <summary>Where a slab descriptor keeps its owner's id, for the C loader, which caches only objects of its own
    /// thread's slabs (their state bytes are that thread's to write).</summary>
    internal static int SlabOwnerOffset
    {
        get
        {
            Slab slab = default;
            return (int)((byte*)&slab.Owner - (byte*)&slab);
        }
    }

    /// <summary>Where a slab descriptor keeps its thread-free list's head, for the C loader's free from another thread.</summary>
    internal static int SlabThreadFreeOffset
    {
        get
        {
            Slab slab = default;
            return (int)((byte*)&slab.ThreadFree - (byte*)&slab);
        }
    }

    /// <summary>Where a slab descriptor keeps its "full" flag.</summary>
    internal static int SlabFullOffset
    {
        get
        {
            Slab slab = default;
            return (int)((byte*)&slab.Full - (byte*)&slab);
        }
    }

    /// <summary>
    /// After a free from another thread made in the C loader (claim, re-read, push: the steps of <see cref="FreeRemote"/>)
    /// pushed the first object on <paramref name="slab"/>'s thread-free list while the slab may be full: the slab goes back
    /// to its owner's list of slabs with free objects, under the lock (descriptors are never freed before Dispose, so the
    /// pointer stays a descriptor; the revive checks again under the lock).
    /// </summary>
    internal void ReviveFullSlab(void* slab)
    {
        using (HoldLock())
        {
            ReviveFullSlabLocked((Slab*)slab);
        }
    }

    /// <summary>The id the calling thread's slabs name as their owner (<see cref="Slab.Owner"/>), registering the thread.</summary>
    internal nint CurrentOwnerId() => CurrentSlabs().Id;

    /// <summary>The state byte of the granule at <paramref name="address"/>, which lies in a region of
    /// <paramref name="regions"/>; <paramref name="hint"/> is the region found last.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static byte* StateSlot(Region[] regions, ulong address, ref int hint)
        => Regions.Of(regions, address, ref hint).StateBase + (address >> GranuleShift);
}
