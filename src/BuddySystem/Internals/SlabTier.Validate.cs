namespace BuddySystem.Internals;

internal sealed unsafe partial class SlabTier
{
    /// <summary>
    /// Checks every invariant and throws <see cref="HeapCorruptionException"/> on the first violation: the buddy engine
    /// validates; every slab's pages point to it; its state bytes mark exactly its live objects; its local list, its
    /// thread-free list and its live objects add up to its capacity; every slab is on exactly the list its owner and its
    /// full flag say (an owner's list, its full list, or the abandoned list of its class), with the empty counts right;
    /// the byte counts add up.
    /// </summary>
    /// <remarks>Pauses every owner while it runs. Exact when no call is in flight on another thread (a free racing with it
    /// may be seen half done). Costs O(managed bytes / 16). For tests and diagnostics, not for hot paths.</remarks>
    /// <exception cref="HeapCorruptionException">An invariant does not hold; the message says which and where.</exception>
    /// <exception cref="ObjectDisposedException">The heap was disposed.</exception>
    public void Validate()
    {
        using (HoldLock())
        {
            ThrowIfDisposed();
            ReclaimExitedLocked();
            PausableOwner.PauseAll(_owners);
            try
            {
                ValidateLocked();
            }
            finally
            {
                PausableOwner.ResumeAll(_owners);
            }
        }
    }

    internal void ValidateLocked()
    {

        // Where each slab was found: in which list (owner id and kind), so the page-map walk can check membership.
        var listed = new Dictionary<nint, (nint Owner, bool Full)>();
        void Walk(Slab* head, nint owner, bool full, int index, string what)
        {
            Slab* previous = null;
            for (Slab* slab = head; slab != null; slab = slab->Next)
            {
                if (slab->Prev != previous || slab->ClassIndex != index || slab->Owner != owner || (full ? slab->Full != 1 : slab->Full != 0)
                    || !listed.TryAdd((nint)slab, (owner, full)))
                {
                    ThrowHelper.ThrowCorruption($"the {what} of class {SizeClasses.SizeOf(index)} holds a wrong slab {ThrowHelper.Hex((ulong)slab->Start)}.");
                }

                previous = slab;
            }
        }

        foreach (ThreadSlabs owner in _owners)
        {
            for (int index = 0; index < SizeClasses.Count; index++)
            {
                ClassSlabs* sizeClass = owner.Classes + index;
                Walk(sizeClass->Head, owner.Id, full: false, index, "list of slabs with free objects");
                Walk(sizeClass->FullHead, owner.Id, full: true, index, "full list");
                long empty = 0, held = 0, marked = 0, stacked = 0;
                for (Slab* slab = sizeClass->Head; slab != null; slab = slab->Next)
                {
                    empty += slab->Used == 0 ? 1 : 0;
                    marked += slab->Reclaimable;
                    held++;
                }

                for (Slab* slab = sizeClass->FullHead; slab != null; slab = slab->Next)
                {
                    marked += slab->Reclaimable;
                    held++;
                }

                for (Slab* slab = sizeClass->Reclaimable; slab != null; slab = slab->NextReclaimable)
                {
                    if (slab->Reclaimable != 1 || !listed.TryGetValue((nint)slab, out var where) || where.Owner != owner.Id || ++stacked > held)
                    {
                        ThrowHelper.ThrowCorruption($"a thread's stack of full slabs freed into, of class {SizeClasses.SizeOf(index)}, holds a wrong slab {ThrowHelper.Hex((ulong)slab->Start)}.");
                    }
                }

                if (marked != stacked)
                {
                    ThrowHelper.ThrowCorruption($"a thread's class {SizeClasses.SizeOf(index)} marks {marked} slabs as freed into while full, and its stack holds {stacked}.");
                }

                if (empty != sizeClass->EmptySlabs || held != sizeClass->SlabsHeld)
                {
                    ThrowHelper.ThrowCorruption($"a thread's class {SizeClasses.SizeOf(index)} counts {sizeClass->EmptySlabs} empty slabs of {empty} and {sizeClass->SlabsHeld} slabs of {held}.");
                }
            }
        }

        for (int index = 0; index < SizeClasses.Count; index++)
        {
            Walk((Slab*)_abandoned[index], 0, full: false, index, "abandoned list");
        }

        ulong slabBytes = 0, objectBytes = 0, exactBytes = 0;
        long slabs = 0, liveObjects = 0, exactBlocks = 0;
        foreach (Region region in _regions)
        {
            byte* states = region.StateBase;
            for (ulong page = 0; page < region.PageCount;)
            {
                nint entry = region.Pages[page];
                ulong address = (region.FirstPage + page) << PageShift;
                if (entry == 0)
                {
                    page++;
                    continue;
                }

                if ((entry & 1) != 0)
                {
                    exactBytes += (ulong)entry >> 1;
                    exactBlocks++;
                    page++;
                    continue;
                }

                var slab = (Slab*)entry;
                ulong size = 1UL << slab->Shift;
                ulong pages = size >> PageShift;
                if ((ulong)slab->Start != address || page + pages > region.PageCount || !listed.ContainsKey(entry))
                {
                    ThrowHelper.ThrowCorruption($"page {ThrowHelper.Hex(address)} points to slab {ThrowHelper.Hex((ulong)slab->Start)}, which does not start there or is on no list.");
                }

                for (ulong inner = 1; inner < pages; inner++)
                {
                    if (region.Pages[page + inner] != entry)
                    {
                        ThrowHelper.ThrowCorruption($"page {ThrowHelper.Hex(address + (inner << PageShift))} lies in slab {ThrowHelper.Hex(address)} but does not point to it.");
                    }
                }

                long live = 0, quarantined = 0;
                for (ulong granule = address >> GranuleShift; granule < (address + size) >> GranuleShift; granule++)
                {
                    byte state = states[granule];
                    ulong offset = (granule << GranuleShift) - address;
                    bool objectStart = offset % slab->ObjectSize == 0 && offset / slab->ObjectSize < (ulong)slab->Capacity;
                    // A live object's state is its class, with OutsideCachedBit while it waits in an outside cache (objects
                    // on the thread-free list stay live until their owner collects them); a quarantined one waits there too.
                    if (state == QuarantinedState && objectStart)
                    {
                        quarantined++;
                        continue;
                    }

                    if (state != 0 && (!objectStart || (state & ~OutsideCachedBit) != slab->ClassIndex + 1))
                    {
                        ThrowHelper.ThrowCorruption($"slab {ThrowHelper.Hex(address)} has a wrong state {state} at {ThrowHelper.Hex(granule << GranuleShift)}.");
                    }

                    live += state != 0 ? 1 : 0;
                }

                long free = CountFreeList(slab, slab->Free, address, size, states, threadFree: false);
                long threadFree = CountFreeList(slab, (FreeObject*)slab->ThreadFree, address, size, states, threadFree: true) - quarantined;
                long neverLinked = slab->Capacity - slab->Linked;
                live -= threadFree;
                if (live + threadFree != slab->Used || free + neverLinked + slab->Used + quarantined != slab->Capacity || neverLinked < 0)
                {
                    ThrowHelper.ThrowCorruption($"slab {ThrowHelper.Hex(address)} counts {slab->Used} used objects; {live} live, {threadFree} freed by other threads, {free} free, {neverLinked} never handed out, of {slab->Capacity}.");
                }

                objectBytes += (ulong)live * slab->ObjectSize;
                liveObjects += live;
                slabBytes += size;
                slabs++;
                page += pages;
            }
        }

        OwnerCounters totals = SumLocked();
        if (slabs != listed.Count || slabs != _slabs || slabBytes != _slabBytes || objectBytes != (ulong)totals.AllocatedBytes
            || liveObjects != totals.LiveBlocks || exactBytes != _exactBytes || exactBlocks != _exactBlocks)
        {
            ThrowHelper.ThrowCorruption($"the counts disagree: {slabs} slabs ({listed.Count} listed) of {slabBytes} bytes, {liveObjects} live objects of {objectBytes} bytes and {exactBlocks} large blocks of {exactBytes} bytes found; {_slabs}, {_slabBytes}, {totals.LiveBlocks}, {totals.AllocatedBytes}, {_exactBlocks} and {_exactBytes} counted.");
        }
    }

    /// <summary>The length of one of a slab's free lists: the local one, whose entries must be free objects of the slab,
    /// or the thread-free one, whose entries are objects of the slab still live and claimed by their remote mark until
    /// their owner collects them.</summary>
    private static long CountFreeList(Slab* slab, FreeObject* head, ulong address, ulong size, byte* states, bool threadFree)
    {
        long count = 0;
        byte expected = threadFree ? (byte)(slab->ClassIndex + 1) : (byte)0;
        byte alsoExpected = threadFree ? QuarantinedState : (byte)0;
        for (FreeObject* item = head; item != null; item = threadFree ? item->RemoteNext : item->Next)
        {
            ulong offset = (ulong)item - address;
            bool claimed = !threadFree || slab->MarkBase[(ulong)item >> GranuleShift] != RemoteMark.Clear;
            if (offset >= size || offset % slab->ObjectSize != 0 || (states[(ulong)item >> GranuleShift] != expected && states[(ulong)item >> GranuleShift] != alsoExpected) || !claimed || ++count > slab->Capacity)
            {
                ThrowHelper.ThrowCorruption($"slab {ThrowHelper.Hex(address)} has a bad free-list entry {ThrowHelper.Hex((ulong)item)}.");
            }
        }

        return count;
    }

    /// <summary>
    /// For a snapshot: copies the host's buddy blocks <paramref name="coreBlocks"/> to <paramref name="blocks"/>, each slab
    /// replaced by its objects (live ones <see cref="Diagnostics.BlockState.Allocated"/>, free ones and the slab's unused
    /// tail <see cref="Diagnostics.BlockState.Cached"/>, each with the slab's order) and listed in <paramref name="slabs"/>,
    /// each large block cut to its length drawn as one allocated block with the order of the buddy block it was cut from.
    /// Under the lock; pauses every owner meanwhile.
    /// </summary>
    internal void ExpandSlabsLocked(ulong baseAddress, List<Diagnostics.HeapBlock> coreBlocks, List<Diagnostics.HeapBlock> blocks, List<Diagnostics.HeapSlab> slabs)
    {
        PausableOwner.PauseAll(_owners);
        try
        {
            ulong skipUntil = 0;
            foreach (Diagnostics.HeapBlock block in coreBlocks)
            {
                ulong address = block.Offset + baseAddress;
                if (address < skipUntil)
                {
                    continue; // a later piece of a large block already drawn whole
                }

                int index = block.State == Diagnostics.BlockState.Allocated ? Regions.Find(_regions, address) : -1;
                nint entry = index < 0 ? 0 : _regions[index].Pages[(address >> PageShift) - _regions[index].FirstPage];
                if (entry == 0)
                {
                    blocks.Add(block);
                    continue;
                }

                if ((entry & 1) != 0)
                {
                    ulong length = (ulong)entry >> 1;
                    blocks.Add(new Diagnostics.HeapBlock(block.Offset, Orders.CeilLog2(length) - GranuleShift, length, Diagnostics.BlockState.Allocated));
                    skipUntil = address + length;
                    continue;
                }

                var slab = (Slab*)entry;
                int live = 0;
                for (int i = 0; i < slab->Capacity; i++)
                {
                    ulong item = address + ((ulong)i * slab->ObjectSize);
                    byte state = slab->StateBase[item >> GranuleShift];
                    bool allocated = state != 0 && state != QuarantinedState
                        && (slab->MarkBase == null || slab->MarkBase[item >> GranuleShift] == RemoteMark.Clear);
                    live += allocated ? 1 : 0;
                    blocks.Add(new Diagnostics.HeapBlock(item - baseAddress, block.Order, slab->ObjectSize,
                        allocated ? Diagnostics.BlockState.Allocated : Diagnostics.BlockState.Cached));
                }

                ulong used = (ulong)slab->Capacity * slab->ObjectSize;
                if (used < block.Size)
                {
                    blocks.Add(new Diagnostics.HeapBlock(block.Offset + used, block.Order, block.Size - used, Diagnostics.BlockState.Cached));
                }

                slabs.Add(new Diagnostics.HeapSlab(block.Offset, block.Size, slab->ObjectSize, slab->Capacity, live));
            }
        }
        finally
        {
            PausableOwner.ResumeAll(_owners);
        }
    }
}
