namespace BuddySystem.Internals;

/// <summary>
/// The size-class and per-thread tiers, written once: objects of the size classes (<see cref="SizeClasses"/>) cut from slabs
/// that are blocks of a buddy core. <see cref="ConcurrentHeap"/> runs it with per-thread slabs, so that the common
/// allocation and free take no lock and frees from other threads are pushed on the slab with one atomic instruction;
/// <see cref="SlabHeap"/> runs it with one owner of every slab and no atomic instruction (<c>SlabTier.SingleOwner.cs</c>).
/// </summary>
/// <remarks>
/// <para><b>Design.</b> Every thread that uses the heap owns its slabs: per size class, a list of slabs that may have free
/// objects (the first serves) and a list of full ones. Each slab keeps two free lists. The <i>local</i> list is touched only
/// by its owner: an allocation pops it, the owner's free pushes on it, with plain loads and stores. The <i>thread-free</i>
/// list takes the frees of every other thread, each pushed with one compare-exchange; the owner takes the whole list with
/// one exchange when its local list runs dry. This is mimalloc's design (Leijen, Zorn and de Moura, "Mimalloc: free list
/// sharding in action", 2019: a free list per page, a separate thread-free list per page for other threads' frees);
/// the code is this project's own. A full slab leaves its owner's list of slabs with free objects; the first free from
/// another thread into a full slab moves it back under the lock (the owner marks a slab full with a full fence and
/// then looks at its thread-free list once more, so one of the two always sees the other). Slabs come from the host's
/// buddy core under the host's lock, and go back to it under the lock: each class of a thread keeps one empty slab
/// (hysteresis), further empty slabs go back at once.</para>
/// <para><b>Misuse stays exact.</b> One state byte per 16-byte granule, outside the managed memory, holds the size class of
/// the live object starting there (0 when none). The owner's allocation stores it; every free turns it from the class of
/// the layout to 0 with one compare-exchange before anything else, so of two frees of one object racing on two threads
/// exactly one succeeds. A failed exchange (an interior pointer, a double free, a layout of another class, a block of the
/// host's own) takes the locked path, which names what is wrong, with the exceptions and messages of
/// <see cref="BuddyHeap"/>, the heap unchanged.</para>
/// <para><b>Idle and exited threads.</b> An owner's fast paths run between two plain stores to a "busy" flag and first read a
/// "paused" flag (the asymmetric handshake of <see cref="PausableOwner"/>). Under the lock another thread may pause every
/// owner and then collect their thread-free lists and return their empty slabs: an allocation that would fail,
/// <see cref="Trim"/>, the host's statistics and <see cref="Validate"/> do. The slabs of a thread that has exited are
/// <i>abandoned</i>: empty ones go back to the buddy core, the others wait in a list per class until another thread needing
/// a slab of that class adopts them, or until they empty (frees into an abandoned slab go to its thread-free list).</para>
/// <para><b>Cost.</b> Allocation from a slab with a free object: a thread-static read, the handshake, a pop and one byte
/// store. A free: the handshake, one compare-exchange on the state byte, a page-map read and a push (a compare-exchange
/// more when another thread owns the slab). When a thread's first slab of a class runs dry, the thread takes the frees
/// other threads made into it, or links its next never-used objects, without the lock; it takes the lock to move on to
/// another slab (about once per slab's worth of objects), and for a free into a full slab or one that empties a slab
/// while its class keeps an empty one.</para>
/// <para><b>Thread safety.</b> Every member is safe from any thread; any thread may free any object. <see cref="Dispose"/>
/// waits for calls in progress on the owners' fast paths and makes every later call throw
/// <see cref="ObjectDisposedException"/>.</para>
/// </remarks>
internal sealed unsafe partial class SlabTier : IDisposable
{
    /// <summary>log2 of the page-map granularity: 1 KiB.</summary>
    internal const int PageShift = 10;

    private const int GranuleShift = 4;
    private const int EmptySlabsKept = 1;

    // The slabs of the heap this thread used last: one thread-static read finds them on the fast paths.
    [ThreadStatic]
    private static ThreadSlabs? t_slabs;

    // The host's lock, taken on the slow paths; null on a single-threaded heap, whose calls come one at a time by contract
    // (and which has no trimmer of its own), so that its slow paths take no atomic instruction either.
    private readonly Lock? _lock;
    private readonly BuddyHeap _buddy;

    // What a thread's slabs name as their heap (ThreadSlabs.HeapKey): an object of its own, so that the thread-static
    // holding them does not keep the heap alive.
    private readonly object _threadKey = new();

    // The host owns the buddy engine, the lock and the regions, and is asked to give back its own cached blocks before a
    // slab cannot be had.
    private readonly Func<Layout, bool> _reclaimHost;
    private readonly ThreadLocal<ThreadSlabs?> _slabsOfThread = new();
    private readonly List<ThreadSlabs> _owners = [];
    // Abandoned slabs per class (list heads), in a pinned array so the lists are linked through plain pointers.
    private readonly nint[] _abandoned = GC.AllocateArray<nint>(SizeClasses.Count, pinned: true);
    private readonly List<nint> _descriptors = [];

    // Set when the tier serves a single-threaded heap (SlabHeap): the one owner of every slab, whichever thread calls (the
    // host holds it too and passes it to the single-owner fast paths).
    private readonly ThreadSlabs? _single;

    private Region[] _regions = [];
    private Slab* _spareDescriptors;
    private volatile bool _disposed;

    // Under the lock: slabs and large blocks (the buddy side), failures, and the counters of exited threads.
    private ulong _slabBytes;
    private long _slabs;
    private long _slabsTaken;

    // The buddy engine's failed allocations that were tries for a slab (a host counts the allocation that failed once).
    private long _slabTakeFailures;
    private long _failedAllocations;
    private OwnerCounters _retired;

    // Large blocks cut to their length (a single-threaded heap's), under the lock.
    private ulong _exactBytes;
    private long _exactBlocks;
    private long _exactUserBytes;
    private long _exactAllocations;

    /// <summary>The size-class tier of a host heap: slabs come from <paramref name="buddy"/> under <paramref name="hostLock"/>,
    /// regions are added with <see cref="AddRegionMetadata"/>, and <paramref name="reclaimHost"/> (under the lock) gives
    /// back the host's cached blocks when no slab can be had; true when it gave any.</summary>
    /// <param name="buddy">The buddy core the slabs and large blocks come from.</param>
    /// <param name="hostLock">The lock the slow paths take (the host's own); null for a single-threaded heap
    /// (<see cref="SlabHeap"/>): every slab then has one owner, not bound to a thread, whose paths
    /// (<see cref="AllocateSingle"/>, <see cref="DeallocateSingle"/>) take no atomic instruction, and large requests are
    /// blocks cut to their length (<see cref="AllocateExact"/>).</param>
    /// <param name="reclaimHost">Gives back the host's cached blocks, under the lock; true when it gave any.</param>
    /// <param name="lateMisuseHandler">Receives the misuses found after their calls returned (racing double frees); null
    /// fails fast (<see cref="BuddyHeapOptions.LateMisuseHandler"/>).</param>
    internal SlabTier(BuddyHeap buddy, Lock? hostLock, Func<Layout, bool> reclaimHost, Action<InvalidOperationException>? lateMisuseHandler = null)
    {
        _lateMisuseHandler = lateMisuseHandler;
        _lock = hostLock;
        _buddy = buddy;
        _reclaimHost = reclaimHost;
        if (hostLock == null)
        {
            _single = new ThreadSlabs(this, thread: null);
            _owners.Add(_single);
        }
    }

    /// <summary>Whether <paramref name="ptr"/> lies in one of this heap's slabs (its page-map entry names a slab). A live
    /// object's slab cannot go away, so for a live object the answer is exact; for anything else the locked path that
    /// follows decides. The calling thread's hot region is read inside the busy/paused handshake, anything else under the
    /// lock, so the page map is never read after <see cref="Dispose"/> freed it.</summary>
    /// <exception cref="ObjectDisposedException">The heap was disposed.</exception>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal bool HoldsInSlab(void* ptr)
    {
        ulong address = (ulong)ptr;
        ThreadSlabs? slabs = t_slabs;
        if (slabs != null && slabs.HeapKey == _threadKey && address - slabs.HotStart < slabs.HotLength)
        {
            slabs.EnterBusy();
            if (!slabs.IsPaused)
            {
                nint entry = Volatile.Read(ref slabs.HotPages[(address >> PageShift) - slabs.HotFirstPage]);
                slabs.ExitBusy();
                return entry != 0 && (entry & 1) == 0;
            }

            slabs.ExitBusy();
        }

        return HoldsInSlabLocked(address);
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private bool HoldsInSlabLocked(ulong address)
    {
        using (HoldLock())
        {
            ThrowIfDisposed();
            int index = Regions.Find(_regions, address);
            if (index < 0)
            {
                return false;
            }

            nint entry = _regions[index].Pages[(address >> PageShift) - _regions[index].FirstPage];
            return entry != 0 && (entry & 1) == 0;
        }
    }

    /// <summary>Checks under the lock that <paramref name="ptr"/> is a live block <paramref name="layout"/> maps to (throws,
    /// naming the address, otherwise) and, when <paramref name="newSize"/> maps to the same class (or, for a large block cut
    /// to its length, see <see cref="TryResizeExactLocked"/>), keeps it in place and says so; false when it must move.</summary>
    internal bool TryResizeInPlace(void* ptr, Layout layout, nuint newSize)
    {
        ThreadSlabs slabs = CurrentSlabs();
        using (HoldLock())
        {
            ThrowIfDisposed();
            nint entry = CheckLiveEntryLocked(ptr, layout, out Region region);
            long grown = (long)newSize - (long)layout.Size;
            if ((entry & 1) != 0)
            {
                return TryResizeExactLocked(ptr, layout, newSize, (ulong)entry >> 1, region);
            }

            if (SizeClasses.IsSmall(newSize, layout.Align) && SizeClasses.IndexOf(newSize, layout.Align) == ((Slab*)entry)->ClassIndex)
            {
                slabs.UserBytes += grown;
                return true;
            }

            return false;
        }
    }

    /// <summary>Slabs the tier holds now (owned, kept empty or abandoned).</summary>
    internal long SlabCount
    {
        get
        {
            using (HoldLock())
            {
                return _slabs;
            }
        }
    }

    /// <summary>What a host adds to its own accounting for this tier: the tier's totals, read with every owner paused, under
    /// the lock (after <see cref="ReclaimExitedLocked"/>). When <paramref name="emptySlabsByOrder"/> is given, appends the
    /// start of every slab that is empty once its frees from other threads are collected to it (by buddy order): blocks an
    /// allocation that would fail gets back (a single-threaded heap, which counts its slabs as allocated, passes null).</summary>
    internal TierTotals TotalsForHostLocked(List<nint>?[]? emptySlabsByOrder)
    {
        PausableOwner.PauseAll(_owners);
        try
        {
            ulong emptySlabBytes = 0;
            if (emptySlabsByOrder != null)
            {
                foreach (ThreadSlabs owner in _owners)
                {
                    for (int index = 0; index < SizeClasses.Count; index++)
                    {
                        emptySlabBytes += CollectEmptySlabs(owner.Classes[index].Head, emptySlabsByOrder);
                        emptySlabBytes += CollectEmptySlabs(owner.Classes[index].FullHead, emptySlabsByOrder);
                    }
                }

                for (int index = 0; index < SizeClasses.Count; index++)
                {
                    emptySlabBytes += CollectEmptySlabs((Slab*)_abandoned[index], emptySlabsByOrder);
                }
            }

            OwnerCounters totals = SumLocked();
            return new TierTotals(totals.AllocatedBytes, totals.UserBytes + _exactUserBytes, totals.LiveBlocks, totals.Allocations + _exactAllocations,
                _slabBytes, emptySlabBytes, _slabs, _slabsTaken, _failedAllocations, _slabTakeFailures, MetadataBytesLocked(), _exactBytes, _exactBlocks);
        }
        finally
        {
            PausableOwner.ResumeAll(_owners);
        }
    }

    private static ulong CollectEmptySlabs(Slab* head, List<nint>?[] byOrder)
    {
        ulong bytes = 0;
        for (Slab* slab = head; slab != null; slab = slab->Next)
        {
            if (slab->Used == UncollectedFrees(slab))
            {
                (byOrder[slab->Shift - GranuleShift] ??= []).Add((nint)slab->Start);
                bytes += 1UL << slab->Shift;
            }
        }

        return bytes;
    }

    /// <summary>The totals of a tier (see <see cref="TotalsForHostLocked"/>): its objects, slabs and large blocks cut to
    /// their length (<see cref="AllocateExact"/>); user bytes and allocations count both kinds. <see cref="FailedAllocations"/>
    /// counts the calls that failed; <see cref="SlabTakeFailures"/> the failed tries for a slab, which the buddy engine
    /// counted as its own failures too.</summary>
    internal readonly record struct TierTotals(long ObjectBytes, long UserBytes, long LiveObjects, long Allocations, ulong SlabBytes,
        ulong EmptySlabBytes, long Slabs, long SlabsTaken, long FailedAllocations, long SlabTakeFailures, ulong MetadataBytes,
        ulong ExactBytes, long ExactBlocks);

    /// <summary>Adds the page map and state bytes of a region the buddy engine has just taken; under the lock.</summary>
    internal void AddRegionMetadata(void* start, nuint size)
    {
        ulong raw = (ulong)start;
        var region = new Region((raw + 15) & ~15UL, (raw + size) & ~15UL, withMarks: _lock != null);
        Region[] grown = Regions.Insert(_regions, region, out _);

        // Lock-free readers see the old table or the new one, both valid: regions are never removed before Dispose.
        Volatile.Write(ref _regions, grown);
        if (_single is { HotLength: 0 })
        {
            _single.SetHotRegion(region);
        }
    }

    /// <summary>
    /// Allocates an object of the first size class that holds <see cref="Layout.Size"/> bytes aligned to
    /// <see cref="Layout.Align"/> (requests up to 8 KiB, classes as <see cref="SlabHeap.ClassSizes"/>), or a large block cut
    /// from the buddy engine; safe from any thread.
    /// </summary>
    /// <param name="layout">Size and alignment wanted; a zero size gets a unique 16-byte object.</param>
    /// <returns>The block; <see langword="null"/> when it cannot be served, even after every thread's empty slabs went back
    /// to the buddy engine.</returns>
    /// <exception cref="ObjectDisposedException">The heap was disposed.</exception>
    /// <remarks>Fast path (the thread's first slab of the class has a free object): no lock, no atomic instruction.</remarks>
    [MethodImpl(MethodImplOptions.AggressiveInlining | MethodImplOptions.AggressiveOptimization)]
    public void* Allocate(Layout layout)
    {
        if (SizeClasses.IsSmall(layout.Size, layout.Align))
        {
            ThreadSlabs? slabs = t_slabs;
            if (slabs != null && slabs.HeapKey == _threadKey)
            {
                int index = SizeClasses.IndexOf(layout.Size, layout.Align);
                ClassSlabs* sizeClass = slabs.Classes + index;
                slabs.EnterBusy();
                Slab* slab = sizeClass->Head;
                if (!slabs.IsPaused && slab != null && slab->Free != null)
                {
                    FreeObject* item = TakeObject(slabs, sizeClass, slab, index, layout.Size, resolveClaim: false);
                    slabs.ExitBusy();
                    if (item != null)
                    {
                        return item;
                    }
                }

                slabs.ExitBusy();
            }
        }

        return AllocateSlow(layout);
    }

    [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
    private void* AllocateSlow(Layout layout)
    {
        void* item = AllocateSlowCore(layout);
        ReportLateMisuses();
        return item;
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private void* AllocateSlowCore(Layout layout)
    {
        ThreadSlabs slabs = CurrentSlabs();
        int index = SizeClasses.IndexOf(layout.Size, layout.Align);
        void* item = TryRefillFirstSlab(slabs, index, layout.Size);
        if (item != null)
        {
            return item;
        }

        using (HoldLock())
        {
            ThrowIfDisposed();
            Slab* slab = SlabWithFreeObjectLocked(slabs, index);
            if (slab == null && ReturnEmptySlabsLocked())
            {
                // Empty slabs kept by any thread, or abandoned ones, may be what keeps a buddy block from merging.
                slab = SlabWithFreeObjectLocked(slabs, index);
            }

            if (slab == null && _reclaimHost(layout))
            {
                slab = SlabWithFreeObjectLocked(slabs, index);
            }

            if (slab == null)
            {
                _failedAllocations++;
                return null;
            }

            item = TakeObject(slabs, slabs.Classes + index, slab, index, layout.Size, checkMark: _single == null);
        }

        // Null only when the object at the head of the slab was claimed by a racing free: the next one serves.
        return item != null ? item : AllocateSlowCore(layout);
    }

    /// <summary>
    /// The owner's refill without the lock, inside its busy window: when its first slab of class <paramref name="index"/>
    /// has run dry, the objects other threads freed into it, else its next never-used objects, then one object; null when
    /// the slab has neither (or the owner is paused), and the locked path moves on to another slab. Safe without the lock
    /// because a slab's local list, use count and never-used tail are its owner's alone; other threads only push on its
    /// thread-free list, taken here with one exchange, and relink the lists of slabs under the lock, which a read of the
    /// first slab tolerates (either slab is the owner's).
    /// </summary>
    private void* TryRefillFirstSlab(ThreadSlabs slabs, int index, nuint userSize)
    {
        ClassSlabs* sizeClass = slabs.Classes + index;
        void* item = null;
        slabs.EnterBusy();
        Slab* slab = sizeClass->Head;
        if (!slabs.IsPaused && slab != null && HasOrGetsFreeObject(sizeClass, slab))
        {
            item = TakeObject(slabs, sizeClass, slab, index, userSize, checkMark: _single == null);
        }

        slabs.ExitBusy();
        return item;
    }

    /// <summary>
    /// Takes the first free object of <paramref name="slab"/>, a slab of <paramref name="slabs"/>' class
    /// <paramref name="index"/> with a free object: the slab counts one more use (no longer empty), the object's state byte
    /// names its class, and the owner counts the request. Null, with the object taken off the list, when another thread's
    /// racing free had claimed it (<see cref="TakeClaimedObject"/>), or with the object left in place when not
    /// <paramref name="resolveClaim"/> (the fast path, which keeps calls out of its frame and leaves it to the slow path); a
    /// single owner (<paramref name="checkMark"/> false) has no other threads and no marks. An owner counts only what its slabs cannot tell, the requests
    /// and the requested bytes: live objects and their bytes are the slabs' use counts (<see cref="SumLocked"/>), so the
    /// fast paths touch two counters and not the object size.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private FreeObject* TakeObject(ThreadSlabs slabs, ClassSlabs* sizeClass, Slab* slab, int index, nuint userSize, byte stateBit = 0, bool checkMark = true, bool resolveClaim = true)
    {
        FreeObject* item = slab->Free;
        if (checkMark && slab->MarkBase[(ulong)item >> GranuleShift] != RemoteMark.Clear && (!resolveClaim || !TakeClaimedObject(slab, item)))
        {
            return null;
        }

        slab->Free = item->Next;
        if (slab->Used++ == 0)
        {
            sizeClass->EmptySlabs--;
        }

        slab->StateBase[(ulong)item >> GranuleShift] = (byte)((index + 1) | stateBit);
        slabs.Allocations++;
        slabs.UserBytes += (long)userSize;
        return item;
    }

    /// <summary>
    /// The thread's first slab of class <paramref name="index"/> with a free object on its local list, after collecting
    /// thread-free lists, moving dry slabs to the full list, adopting an abandoned slab or making a new one; null when none
    /// can be had.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private Slab* SlabWithFreeObjectLocked(ThreadSlabs slabs, int index)
    {
        ClassSlabs* sizeClass = slabs.Classes + index;
        DrainReclaimable(sizeClass);
        for (Slab* slab = sizeClass->Head; slab != null; slab = sizeClass->Head)
        {
            if (HasOrGetsFreeObject(sizeClass, slab))
            {
                return slab;
            }

            // Dry: the slab goes to the full list (or straight back, when a free came in meanwhile: the loop collects it).
            Unlink(ref sizeClass->Head, slab);
            PushFullLocked(sizeClass, slab);
        }

        Slab* adopted = AdoptLocked(slabs, index);
        return adopted != null ? adopted : NewSlabLocked(slabs, index);
    }

    /// <summary>Whether <paramref name="slab"/>, its owner's first slab of <paramref name="sizeClass"/>, has a free object on
    /// its local list, after taking the frees other threads made into it, else linking its next never-used objects (in that
    /// order: reused objects before untouched memory). By the owner in its busy window, or under the lock.</summary>
    private bool HasOrGetsFreeObject(ClassSlabs* sizeClass, Slab* slab)
        => slab->Free != null || CollectThreadFree(sizeClass, slab) != 0 || ExtendFreeList(slab);

    /// <summary>
    /// Links the slab's next objects that were never handed out, about 4 KiB of them (at least
    /// <see cref="SizeClasses.MinExtendObjects"/>), onto its empty local list; false when every object has been linked
    /// already. A new slab thus touches one page where linking it whole would write every object (mimalloc extends its
    /// pages' free lists the same way). By the owner in its busy window, or under the lock.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static bool ExtendFreeList(Slab* slab)
    {
        int remaining = slab->Capacity - slab->Linked;
        if (remaining == 0)
        {
            return false;
        }

        int count = Math.Min(remaining, SizeClasses.ExtendCountFor(slab->ObjectSize));
        slab->Free = (FreeObject*)LinkObjects(slab->Start + ((nuint)slab->Linked * slab->ObjectSize), count, slab->ObjectSize);
        slab->Linked += count;
        return true;
    }

    /// <summary>
    /// Puts <paramref name="slab"/>, out of every list, on its class's full list, then looks at its thread-free list once
    /// more: the fence orders "full" before that look, and another thread's free pushes first and then reads "full", so one
    /// of the two sees the other. True when a free came in meanwhile and the slab went back to the list of slabs with free
    /// objects (its thread-free list not yet collected).
    /// </summary>
    private static bool PushFullLocked(ClassSlabs* sizeClass, Slab* slab)
    {
        PushFront(ref sizeClass->FullHead, slab);
        Interlocked.Exchange(ref slab->Full, 1);
        if (Volatile.Read(ref slab->ThreadFree) == 0)
        {
            return false;
        }

        Unlink(ref sizeClass->FullHead, slab);
        slab->Full = 0;
        PushFront(ref sizeClass->Head, slab);
        return true;
    }

    /// <summary>Takes an abandoned slab of class <paramref name="index"/> with a free object, if any, for <paramref name="slabs"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private Slab* AdoptLocked(ThreadSlabs slabs, int index)
    {
        ClassSlabs* sizeClass = slabs.Classes + index;
        while (_abandoned[index] != 0)
        {
            var slab = (Slab*)_abandoned[index];
            Unlink(ref *(Slab**)Unsafe.AsPointer(ref _abandoned[index]), slab);
            Volatile.Write(ref slab->Owner, slabs.Id);
            sizeClass->SlabsHeld++;
            CollectThreadFree(null, slab);
            if (slab->Used == 0)
            {
                sizeClass->EmptySlabs++;
            }

            if (slab->Free != null || ExtendFreeList(slab))
            {
                PushFront(ref sizeClass->Head, slab);
                return slab;
            }

            if (PushFullLocked(sizeClass, slab))
            {
                CollectThreadFree(sizeClass, slab);
                return slab;
            }
        }

        return null;
    }

    /// <summary>Takes a buddy block for a new slab of class <paramref name="index"/> owned by <paramref name="slabs"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private Slab* NewSlabLocked(ThreadSlabs slabs, int index)
    {
        long failedBefore = _buddy.Counters.FailedAllocations;
        // A single-threaded heap's class grows its slabs with every slab it has made: its W6 measured a point higher than
        // counting the slabs it holds (docs/benchmarks.md); a thread's class counts those it holds, so it starts small again.
        ClassSlabs* sizeClass = slabs.Classes + index;
        void* block = TakeSlabBlock(_buddy, index, _single != null ? sizeClass->SlabsMade : sizeClass->SlabsHeld, out int shift);
        _slabTakeFailures += _buddy.Counters.FailedAllocations - failedBefore;
        if (block == null)
        {
            return null;
        }

        ref Region region = ref _regions[Regions.Find(_regions, (ulong)block)];
        uint objectSize = SizeClasses.SizeOf(index);
        Slab* slab = TakeDescriptorLocked();
        slab->Start = (byte*)block;
        slab->Shift = shift;
        slab->ClassIndex = index;
        slab->ObjectSize = objectSize;
        slab->Capacity = (int)((1u << shift) / objectSize);
        slab->StateBase = region.StateBase;
        slab->MarkBase = region.MarkBase;
        slab->Owner = slabs.Id;

        ExtendFreeList(slab);
        MapSlabPages(region.Pages, region.FirstPage, block, shift, (nint)slab);
        PushFront(ref sizeClass->Head, slab);
        sizeClass->EmptySlabs++;
        sizeClass->SlabsHeld++;
        sizeClass->SlabsMade++;
        _slabBytes += 1UL << shift;
        _slabs++;
        _slabsTaken++;
        return slab;
    }

    /// <summary>Frees an object or a large block; safe from any thread, whichever thread allocated it.</summary>
    /// <param name="ptr">A block returned by <see cref="Allocate"/> of this heap.</param>
    /// <param name="layout">A layout that maps to the same size class (or, for a large block, the same length) as the one used to allocate it.</param>
    /// <exception cref="ArgumentNullException"><paramref name="ptr"/> is null.</exception>
    /// <exception cref="ArgumentException"><paramref name="ptr"/> lies outside every region, is not the start of an
    /// object or block, or <paramref name="layout"/> maps to another class. The message names the address; the heap is unchanged.</exception>
    /// <exception cref="InvalidOperationException">The block is not allocated (a double free, also when two threads free it
    /// at once: exactly one succeeds); the message names the address; the heap is unchanged.</exception>
    /// <exception cref="ObjectDisposedException">The heap was disposed.</exception>
    /// <remarks>Fast path: one compare-exchange on the object's state byte, then a push on the slab's local list (the
    /// owner) or its thread-free list (any other thread, one more compare-exchange); no lock.</remarks>
    [MethodImpl(MethodImplOptions.AggressiveInlining | MethodImplOptions.AggressiveOptimization)]
    public void Deallocate(void* ptr, Layout layout)
    {
        ThreadSlabs? slabs = t_slabs;
        ulong address = (ulong)ptr;
        if (slabs != null && slabs.HeapKey == _threadKey && SizeClasses.IsSmall(layout.Size, layout.Align)
            && address - slabs.HotStart < slabs.HotLength && (address & 15) == 0)
        {
            byte live = (byte)(SizeClasses.IndexOf(layout.Size, layout.Align) + 1);
            ulong granule = address >> GranuleShift;
            slabs.EnterBusy();
            if (!slabs.IsPaused && slabs.HotStateBase[granule] == live)
            {
                var slab = (Slab*)slabs.HotPages[(address >> PageShift) - slabs.HotFirstPage];
                if (slab->Owner != slabs.Id)
                {
                    FreeRemote(slabs, slab, address, live, layout);
                    return;
                }

                // The owner's free: the state byte is its own to write. A claimed mark means another thread is freeing
                // the object already (the locked path names it).
                if (slabs.HotMarkBase[granule] == RemoteMark.Clear)
                {
                    slabs.HotStateBase[granule] = 0;
                    ReleaseOwnInHotRegion(slabs, slab, address, layout.Size);
                    return;
                }
            }

            slabs.ExitBusy();
        }

        DeallocateSlow(ptr, layout);
    }

    /// <summary>The rest of the owner's lock-free free of an object of its <paramref name="slab"/>, once its state byte went
    /// to 0, with the caller busy (and no longer busy on return).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private void ReleaseOwnInHotRegion(ThreadSlabs slabs, Slab* slab, ulong address, nuint userSize)
    {
        if (TryReleaseOwnObject(slabs, slab, (FreeObject*)address, userSize, singleOwner: false))
        {
            slabs.ExitBusy();
            return;
        }

        FreeMarkedObject(slabs, slab, (FreeObject*)address);
    }

    /// <summary>
    /// The common case of a free, after the object's state byte went to 0: counts it and, when <paramref name="slabs"/>
    /// owns the slab, pushes the object on the local list (a thread's full slab also goes on its class's stack of slabs to
    /// move back to the list of slabs with free objects, <see cref="DrainReclaimable"/>); false (and only counted) when the
    /// free empties the slab while it is full or its class already keeps an empty slab (it goes back), or the slab is
    /// another thread's: <see cref="FreeMarkedObject"/> does the rest. The single owner (<paramref name="singleOwner"/>)
    /// owns every slab and does not defer a full slab: its lock is its own, and its free into a full slab takes the locked
    /// path, which moves the slab back at once (deferring it there made the slab-heap fail a W3 allocation).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static bool TryReleaseOwnObject(ThreadSlabs slabs, Slab* slab, FreeObject* item, nuint userSize, bool singleOwner)
    {
        slabs.UserBytes -= (long)userSize;
        if ((!singleOwner && slab->Owner != slabs.Id) || (slab->Full != 0 && (singleOwner || slab->Used <= 1)))
        {
            return false;
        }

        // The class is reached only when the free empties the slab or revives a full one: not on the common path.
        if (slab->Used <= 1)
        {
            ClassSlabs* emptied = slabs.Classes + slab->ClassIndex;
            if (emptied->EmptySlabs >= EmptySlabsKept)
            {
                return false;
            }

            emptied->EmptySlabs++;
        }

        item->Next = slab->Free;
        slab->Free = item;
        slab->Used--;
        if (!singleOwner && slab->Full != 0 && slab->Reclaimable == 0)
        {
            // A full slab with a free object again: it rejoins the list of slabs with free objects at the next locked call
            // on the class (the lists are changed only under the lock; this stack is the owner's alone).
            ClassSlabs* sizeClass = slabs.Classes + slab->ClassIndex;
            slab->Reclaimable = 1;
            slab->NextReclaimable = sizeClass->Reclaimable;
            sizeClass->Reclaimable = slab;
        }

        return true;
    }

    /// <summary>Moves the full slabs the owner freed into without the lock back to its list of slabs with free objects (a
    /// slab another thread's free revived meanwhile is there already); under the lock, by the owner or with it paused.
    /// Every locked call that may give a slab back drains its class first, so no slab on the stack is ever given back.</summary>
    private static void DrainReclaimable(ClassSlabs* sizeClass)
    {
        for (Slab* slab = sizeClass->Reclaimable; slab != null;)
        {
            Slab* next = slab->NextReclaimable;
            slab->NextReclaimable = null;
            slab->Reclaimable = 0;
            if (slab->Full != 0)
            {
                Unlink(ref sizeClass->FullHead, slab);
                slab->Full = 0;
                PushFront(ref sizeClass->Head, slab);
            }

            slab = next;
        }

        sizeClass->Reclaimable = null;
    }

    /// <summary>The rest of a lock-free free, after the object's state byte went to 0 and with the caller busy: the owner's
    /// free into a full slab or the one that empties a slab takes the lock; another thread's free pushes on the slab's
    /// thread-free list (the first into a full slab revives it under the lock).</summary>
    [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
    private void FreeMarkedObject(ThreadSlabs slabs, Slab* slab, FreeObject* item)
    {
        if (slab->Owner == slabs.Id)
        {
            slabs.ExitBusy();
            using (HoldLock())
            {
                // The object is this thread's and already marked free: no check is left, only the lists (unless the heap
                // was disposed meanwhile, and the lists with it).
                if (!_disposed)
                {
                    ReleaseOwnObjectLocked(slabs, slab, item);
                }
            }

            return;
        }

        // "Full" is read inside the busy window: once it closes, a Dispose on another thread may free the descriptor. (The
        // slab may be recycled meanwhile; ReviveFullSlabLocked checks again under the lock.)
        bool revive = PushThreadFree(slab, item) && Volatile.Read(ref slab->Full) == 1;
        slabs.ExitBusy();
        if (revive)
        {
            using (HoldLock())
            {
                ReviveFullSlabLocked(slab);
            }
        }
    }

    [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
    private void DeallocateSlow(void* ptr, Layout layout)
    {
        DeallocateLocked(ptr, layout);
        ReportLateMisuses();
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private void DeallocateLocked(void* ptr, Layout layout)
    {
        ThrowIfDisposed();
        ThreadSlabs slabs = CurrentSlabs();
        using (HoldLock())
        {
            ThrowIfDisposed();
            while (true)
            {
                Slab* slab = CheckLiveBlockLocked(ptr, layout, out Region region);
                slabs.SetHotRegion(region);
                ulong address = (ulong)ptr;
                ulong granule = address >> GranuleShift;
                var item = (FreeObject*)ptr;
                if (slab->Owner == slabs.Id)
                {
                    // The owner (or the single owner, which has no marks): plain stores, as on its fast path.
                    if (slab->MarkBase != null && Volatile.Read(ref slab->MarkBase[granule]) != RemoteMark.Clear)
                    {
                        ThrowNotAllocated(address, slab->ObjectSize);
                    }

                    slab->StateBase[granule] = 0;
                    slabs.UserBytes -= (long)layout.Size;
                    ReleaseOwnObjectLocked(slabs, slab, item);
                    return;
                }

                switch (ClaimRemote(slab->StateBase + granule, slab->MarkBase + granule, (byte)(slab->ClassIndex + 1)))
                {
                    case RemoteClaim.Claimed:
                        slabs.UserBytes -= (long)layout.Size;
                        if (PushThreadFree(slab, item) && slab->Full == 1)
                        {
                            ReviveFullSlabLocked(slab);
                        }

                        return;
                    case RemoteClaim.NotLiveAwaited:
                        slab->MarkBase[granule] = RemoteMark.ReportedByClaimer;
                        if (PushThreadFree(slab, item) && slab->Full == 1)
                        {
                            ReviveFullSlabLocked(slab);
                        }

                        ThrowNotAllocated(address, slab->ObjectSize);
                        return;
                    case RemoteClaim.AlreadyClaimed:
                        ThrowNotAllocated(address, slab->ObjectSize);
                        return;
                    default:
                        // Its owner freed it between the check and here: check again, which throws.
                        continue;
                }
            }
        }
    }

    /// <summary>The first free from another thread into a full slab: it goes back to its owner's list of slabs with free
    /// objects (an abandoned slab waits for its adopter).</summary>
    private void ReviveFullSlabLocked(Slab* slab)
    {
        if (_disposed || slab->Full != 1 || slab->Owner == 0)
        {
            return;
        }

        ThreadSlabs? owner = ThreadSlabs.FromId(slab->Owner);
        if (owner == null)
        {
            return;
        }

        ClassSlabs* sizeClass = owner.Classes + slab->ClassIndex;
        Unlink(ref sizeClass->FullHead, slab);
        slab->Full = 0;
        PushFront(ref sizeClass->Head, slab);
    }

    /// <summary>An object of the calling thread's own slab, already marked free: back on the local list, the slab back on
    /// the list of slabs with free objects if it was full, and an empty slab kept or returned.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private void ReleaseOwnObjectLocked(ThreadSlabs slabs, Slab* slab, FreeObject* item)
    {
        ClassSlabs* sizeClass = slabs.Classes + slab->ClassIndex;
        DrainReclaimable(sizeClass);
        item->Next = slab->Free;
        slab->Free = item;
        if (slab->Full != 0)
        {
            Unlink(ref sizeClass->FullHead, slab);
            slab->Full = 0;
            PushFront(ref sizeClass->Head, slab);
        }

        if (--slab->Used == 0)
        {
            if (sizeClass->EmptySlabs < EmptySlabsKept)
            {
                sizeClass->EmptySlabs++;
            }
            else
            {
                Unlink(ref sizeClass->Head, slab);
                sizeClass->SlabsHeld--;
                ReturnSlabLocked(slab);
            }
        }
    }

    /// <summary>Gives an empty slab, already out of every list, back to the buddy engine; its descriptor is kept for reuse.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private void ReturnSlabLocked(Slab* slab)
    {
        ref Region region = ref _regions[Regions.Find(_regions, (ulong)slab->Start)];
        MapSlabPages(region.Pages, region.FirstPage, slab->Start, slab->Shift, 0);
        nuint size = (nuint)1 << slab->Shift;
        _buddy.Deallocate(slab->Start, new Layout(size, size));
        _slabBytes -= size;
        _slabs--;

        // Descriptors are never freed before Dispose: a free racing on another thread may still read this one's fields.
        *slab = default;
        slab->Next = _spareDescriptors;
        _spareDescriptors = slab;
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private Slab* TakeDescriptorLocked()
    {
        Slab* slab = _spareDescriptors;
        if (slab != null)
        {
            _spareDescriptors = slab->Next;
            *slab = default;
            return slab;
        }

        slab = CacheLines.AllocateNative<Slab>();
        _descriptors.Add((nint)slab);
        return slab;
    }

    /// <summary>Checks under the lock that <paramref name="ptr"/> is a live object <paramref name="layout"/> maps to (any
    /// live object when not <paramref name="checkLayout"/>) and returns its slab; throws, naming the address, before
    /// anything changes (see <see cref="CheckLiveEntryLocked"/>).</summary>
    private Slab* CheckLiveBlockLocked(void* ptr, Layout layout, out Region region, bool checkLayout = true)
    {
        nint entry = CheckLiveEntryLocked(ptr, layout, out region, checkLayout);
        if ((entry & 1) != 0)
        {
            // A large block cut to its length, wanted as an object (a size-less call on a single-threaded heap).
            ThrowWrongLayout((ulong)ptr, layout, SlabHeap.BlockSizeFor(layout), (ulong)entry >> 1);
        }

        return (Slab*)entry;
    }

    /// <summary>
    /// Checks under the lock that <paramref name="ptr"/> is a live object or large block cut to its length that
    /// <paramref name="layout"/> maps to and returns its page-map entry (a slab descriptor, or a large block's tagged
    /// length); throws, naming the address, before anything changes. Anything else is named by the buddy engine (null,
    /// outside, interior, not allocated); a live buddy block is the host's own (a wrong layout) or, on a single-threaded
    /// heap, a later piece of a large block (not a block).
    /// </summary>
    private nint CheckLiveEntryLocked(void* ptr, Layout layout, out Region region, bool checkLayout = true)
    {
        ulong address = (ulong)ptr;
        int regionIndex = Regions.FindForFree(_regions, ptr);

        region = _regions[regionIndex];
        nint entry = region.Pages[(address >> PageShift) - region.FirstPage];
        bool expectedSmall = SizeClasses.IsSmall(layout.Size, layout.Align);
        ulong expected = SlabHeap.BlockSizeFor(layout);
        if (!expectedSmall && _single == null)
        {
            expected = BuddyHeap.BlockSizeOf(layout);
        }

        if (entry == 0 || ((entry & 1) != 0 && (address & ((1UL << PageShift) - 1)) != 0))
        {
            int order = _buddy.CheckLiveBlock(ptr, layout, out _, checkLayout: false);
            if (_single != null)
            {
                ThrowNotABlock(address);
            }

            ThrowWrongLayout(address, layout, expected, (ulong)BuddyHeap.MinBlockSize << order);
        }

        if ((entry & 1) != 0)
        {
            ulong length = (ulong)entry >> 1;
            if (checkLayout && (expectedSmall || expected != length))
            {
                ThrowWrongLayout(address, layout, expected, length);
            }

            return entry;
        }

        var slab = (Slab*)entry;
        ulong offset = address - (ulong)slab->Start;
        if (offset % slab->ObjectSize != 0 || offset / slab->ObjectSize >= (ulong)slab->Capacity)
        {
            ThrowNotABlock(address);
        }

        if (!IsHandedOut(slab->StateBase[address >> GranuleShift]))
        {
            ThrowNotAllocated(address, slab->ObjectSize);
        }

        if (checkLayout && (!expectedSmall || SizeClasses.IndexOf(layout.Size, layout.Align) != slab->ClassIndex))
        {
            ThrowWrongLayout(address, layout, expected, slab->ObjectSize);
        }

        return entry;
    }

    /// <summary>
    /// Returns every empty slab of every thread (the ones kept for hysteresis too), and of exited threads, to the buddy
    /// engine, after collecting the frees other threads made into them.
    /// </summary>
    /// <exception cref="ObjectDisposedException">The heap was disposed.</exception>
    internal void Trim()
    {
        using (HoldLock())
        {
            ThrowIfDisposed();
            ReturnEmptySlabsLocked();
        }
    }

    /// <summary>
    /// Pauses every owner, collects every slab's thread-free list, returns every empty slab (of live, exited and abandoned
    /// owners) to the buddy engine and resumes; true when any slab went back.
    /// </summary>
    internal bool ReturnEmptySlabsLocked()
    {
        ReclaimExitedLocked();
        return ReturnEmptySlabsOfLocked(_owners);
    }

    /// <summary>For a host's trimming after a full collection: returns the empty slabs of the owners that allocated nothing
    /// since the previous call, when <paramref name="heapInUse"/> (others did); under the lock. True when any went back.</summary>
    internal bool ReturnIdleEmptySlabsLocked(bool heapInUse)
    {
        ReclaimExitedLocked();
        var idle = new List<ThreadSlabs>();
        foreach (ThreadSlabs owner in _owners)
        {
            if (owner.IsIdleSinceLastLook() && heapInUse)
            {
                idle.Add(owner);
            }
        }

        return idle.Count != 0 && ReturnEmptySlabsOfLocked(idle);
    }

    /// <summary>The allocations of every live owner, read without pausing them (for a host's trimming heuristics).</summary>
    internal long AllocationsOfOwnersLocked()
    {
        long allocations = 0;
        foreach (ThreadSlabs owner in _owners)
        {
            allocations += Volatile.Read(ref owner.Allocations);
        }

        return allocations;
    }

    /// <summary>Adds the metadata of every region of the buddy engine this heap does not know yet (a host's rescue callback
    /// adds regions to the engine directly); under the lock.</summary>
    internal void AddMissingRegionsLocked()
    {
        for (int i = 0; i < _buddy.RegionCount; i++)
        {
            BuddyHeap.Region region = _buddy.RegionAt(i);
            if (Regions.Find(_regions, region.Start) < 0)
            {
                AddRegionMetadata((void*)region.Start, (nuint)(region.End - region.Start));
            }
        }
    }

    private bool ReturnEmptySlabsOfLocked(List<ThreadSlabs> owners)
    {
        long before = _slabs;
        PausableOwner.PauseAll(owners);
        try
        {
            foreach (ThreadSlabs owner in owners)
            {
                for (int index = 0; index < SizeClasses.Count; index++)
                {
                    ClassSlabs* sizeClass = owner.Classes + index;
                    DrainReclaimable(sizeClass);
                    for (Slab* slab = sizeClass->FullHead; slab != null;)
                    {
                        Slab* next = slab->Next;
                        if (CollectThreadFree(null, slab) != 0)
                        {
                            Unlink(ref sizeClass->FullHead, slab);
                            slab->Full = 0;
                            PushFront(ref sizeClass->Head, slab);
                            if (slab->Used == 0)
                            {
                                sizeClass->EmptySlabs++;
                            }
                        }

                        slab = next;
                    }

                    for (Slab* slab = sizeClass->Head; slab != null;)
                    {
                        Slab* next = slab->Next;
                        CollectThreadFree(sizeClass, slab);
                        if (slab->Used == 0)
                        {
                            sizeClass->EmptySlabs--;
                            sizeClass->SlabsHeld--;
                            Unlink(ref sizeClass->Head, slab);
                            ReturnSlabLocked(slab);
                        }

                        slab = next;
                    }
                }
            }
        }
        finally
        {
            PausableOwner.ResumeAll(owners);
        }

        ReturnEmptyAbandonedLocked();
        return _slabs != before;
    }

    private void ReturnEmptyAbandonedLocked()
    {
        for (int index = 0; index < SizeClasses.Count; index++)
        {
            ref Slab* head = ref *(Slab**)Unsafe.AsPointer(ref _abandoned[index]);
            for (Slab* slab = head; slab != null;)
            {
                Slab* next = slab->Next;
                CollectThreadFree(null, slab);
                if (slab->Used == 0)
                {
                    Unlink(ref head, slab);
                    ReturnSlabLocked(slab);
                }

                slab = next;
            }
        }
    }

    /// <summary>Abandons the slabs of threads that have exited: empty ones go back, the others wait for an adopter. True when there were any.</summary>
    internal bool ReclaimExitedLocked()
    {
        bool any = false;
        for (int i = _owners.Count - 1; i >= 0; i--)
        {
            ThreadSlabs owner = _owners[i];
            if (!owner.HasExited)
            {
                continue;
            }

            for (int index = 0; index < SizeClasses.Count; index++)
            {
                ClassSlabs* sizeClass = owner.Classes + index;
                ref Slab* abandoned = ref *(Slab**)Unsafe.AsPointer(ref _abandoned[index]);
                for (int list = 0; list < 2; list++)
                {
                    for (Slab* slab = list == 0 ? sizeClass->Head : sizeClass->FullHead; slab != null;)
                    {
                        Slab* next = slab->Next;
                        slab->Next = null;
                        slab->Prev = null;
                        slab->Full = 0;
                        slab->Reclaimable = 0;
                        slab->NextReclaimable = null;
                        Volatile.Write(ref slab->Owner, 0);
                        CollectThreadFree(null, slab);
                        if (slab->Used == 0)
                        {
                            ReturnSlabLocked(slab);
                        }
                        else
                        {
                            PushFront(ref abandoned, slab);
                        }

                        slab = next;
                    }
                }

                *sizeClass = default;
            }

            owner.Retire();
            _retired.RetireAt(_owners, i);
            any = true;
        }

        return any;
    }

    /// <summary>The owners' counters summed, with the exited owners'; live objects and their bytes are the slabs' use counts
    /// less the objects other threads freed into them and their owners have not collected yet. Under the lock, with every
    /// owner paused (or the single owner's calls done): O(slabs + such objects).</summary>
    private OwnerCounters SumLocked()
    {
        OwnerCounters totals = _retired;
        foreach (ThreadSlabs owner in _owners)
        {
            totals.Add(owner);
            for (int index = 0; index < SizeClasses.Count; index++)
            {
                AddLiveObjects(owner.Classes[index].Head, ref totals);
                AddLiveObjects(owner.Classes[index].FullHead, ref totals);
            }
        }

        for (int index = 0; index < SizeClasses.Count; index++)
        {
            AddLiveObjects((Slab*)_abandoned[index], ref totals);
        }

        return totals;
    }

    private static void AddLiveObjects(Slab* head, ref OwnerCounters totals)
    {
        for (Slab* slab = head; slab != null; slab = slab->Next)
        {
            long live = slab->Used - UncollectedFrees(slab);
            totals.LiveBlocks += live;
            totals.AllocatedBytes += live * slab->ObjectSize;
        }
    }

    /// <summary>The objects other threads freed into <paramref name="slab"/> that its owner has not collected yet (its
    /// use count still includes them); under the lock, with the owner paused or exited.</summary>
    private static int UncollectedFrees(Slab* slab)
    {
        int count = 0;
        for (var item = (FreeObject*)Volatile.Read(ref slab->ThreadFree); item != null; item = item->RemoteNext)
        {
            count++;
        }

        return count;
    }

    private ulong MetadataBytesLocked()
    {
        ulong bytes = (ulong)_descriptors.Count * (ulong)sizeof(Slab);
        foreach (Region region in _regions)
        {
            bytes += region.MetadataBytes;
        }

        return bytes;
    }

    /// <summary>Frees the metadata (the host frees the memory). Calls in progress on other threads' fast paths are waited
    /// for; every later call throws <see cref="ObjectDisposedException"/>. Calling it again is harmless.</summary>
    public void Dispose()
    {
        using (HoldLock())
        {
            if (_disposed)
            {
                return;
            }

            _disposed = true;

            // Paused for good: an owner that enters a fast path now takes the locked path and finds the heap disposed.
            PausableOwner.PauseAll(_owners);
            foreach (ThreadSlabs owner in _owners)
            {
                owner.Retire();
            }

            _owners.Clear();
            foreach (nint descriptor in _descriptors)
            {
                CacheLines.Free((void*)descriptor);
            }

            _descriptors.Clear();
            _spareDescriptors = null;
            Regions.FreeAll(ref _regions);
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

    /// <summary>The calling thread's slabs of this heap, registering them on first use.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private ThreadSlabs CurrentSlabs()
    {
        ThreadSlabs? slabs = _single ?? t_slabs;
        if (slabs != null && slabs.HeapKey == _threadKey)
        {
            return slabs;
        }

        ThrowIfDisposed();
        slabs = _slabsOfThread.Value;
        if (slabs == null)
        {
            slabs = new ThreadSlabs(this, Thread.CurrentThread);
            using (HoldLock())
            {
                ThrowIfDisposed();
                ReclaimExitedLocked();
                _owners.Add(slabs);
                _slabsOfThread.Value = slabs;
            }
        }

        // The region the thread will most likely free into: the first one (the hot region moves on a miss).
        if (slabs.HotLength == 0 && _regions.Length != 0)
        {
            slabs.SetHotRegion(_regions[0]);
        }

        t_slabs = slabs;
        return slabs;
    }

    /// <summary>Holds the host's lock until disposed (a using block); holds nothing on a single-threaded heap.</summary>
    private LockHold HoldLock() => new(_lock);

    private readonly ref struct LockHold
    {
        private readonly Lock? _held;

        public LockHold(Lock? hostLock)
        {
            hostLock?.Enter();
            _held = hostLock;
        }

        public void Dispose() => _held?.Exit();
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void PushFront(ref Slab* head, Slab* slab)
    {
        slab->Next = head;
        slab->Prev = null;
        if (head != null)
        {
            head->Prev = slab;
        }

        head = slab;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Unlink(ref Slab* head, Slab* slab)
    {
        if (slab->Prev != null)
        {
            slab->Prev->Next = slab->Next;
        }
        else
        {
            head = slab->Next;
        }

        if (slab->Next != null)
        {
            slab->Next->Prev = slab->Prev;
        }

        slab->Next = null;
        slab->Prev = null;
    }

    /// <summary>
    /// A buddy block for a new slab of class <paramref name="index"/> while <paramref name="slabCount"/> slabs of the class
    /// are held: of the preferred size (<see cref="SizeClasses.SlabShiftFor"/>), else the largest smaller one down to the
    /// class's minimum; null when none can be had. <paramref name="shift"/> is log2 of the block's size.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void* TakeSlabBlock(BuddyHeap buddy, int index, int slabCount, out int shift)
    {
        shift = SizeClasses.SlabShiftFor(index, slabCount);
        for (int min = SizeClasses.MinSlabShift(index); shift >= min; shift--)
        {
            void* block = buddy.Allocate(new Layout((nuint)1 << shift, (nuint)1 << shift));
            if (block != null)
            {
                return block;
            }
        }

        return null;
    }

    /// <summary>Links <paramref name="count"/> objects of <paramref name="objectSize"/> bytes from <paramref name="first"/>
    /// into a free list through their first word, in address order so the slab hands them out from its start; returns the
    /// first.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void* LinkObjects(void* first, int count, uint objectSize)
    {
        void* next = null;
        for (int i = count - 1; i >= 0; i--)
        {
            var item = (void**)((byte*)first + ((nuint)i * objectSize));
            *item = next;
            next = item;
        }

        return next;
    }

    /// <summary>Points the page-map entries of the slab of 2^<paramref name="shift"/> bytes at <paramref name="block"/> to
    /// <paramref name="entry"/> (0 when the slab goes back).</summary>
    private static void MapSlabPages(nint* pages, ulong firstPage, void* block, int shift, nint entry)
        => new Span<nint>(pages + (((ulong)block >> PageShift) - firstPage), 1 << (shift - PageShift)).Fill(entry);

    [System.Diagnostics.CodeAnalysis.DoesNotReturn]
    private static void ThrowNotABlock(ulong address)
        => ThrowHelper.ThrowArgument($"Cannot free {ThrowHelper.Hex(address)}: it is not the start of a block of this heap (an interior or never-allocated address).", "ptr");

    [System.Diagnostics.CodeAnalysis.DoesNotReturn]
    private static void ThrowNotAllocated(ulong address, ulong blockSize)
        => ThrowHelper.ThrowInvalidOperation($"Cannot free {ThrowHelper.Hex(address)}: the block of {blockSize} bytes there is not allocated (a double free, or a free block never handed out).");

    [System.Diagnostics.CodeAnalysis.DoesNotReturn]
    private static void ThrowWrongLayout(ulong address, Layout layout, ulong expected, ulong blockSize)
        => ThrowHelper.ThrowArgument($"Cannot free {ThrowHelper.Hex(address)} with {layout}: that layout maps to a block of {expected} bytes, but the block there has {blockSize} bytes.", "layout");

    /// <summary>A free object's link, in its first word.</summary>
    internal struct FreeObject
    {
        /// <summary>The link of the owner's local list.</summary>
        public FreeObject* Next;

        /// <summary>The link of the slab's thread-free list (objects are at least 16 bytes).</summary>
        public FreeObject* RemoteNext;
    }

    /// <summary>One slab's descriptor, in native memory outside the slab; reused, never freed before Dispose.</summary>
    internal struct Slab
    {
        public byte* Start;

        /// <summary>The owner's free list.</summary>
        public FreeObject* Free;

        /// <summary>Other threads' frees: a stack pushed by compare-exchange, taken whole by exchange.</summary>
        public nint ThreadFree;

        public Slab* Next;
        public Slab* Prev;

        /// <summary>The region's state bytes, indexed by address / 16.</summary>
        public byte* StateBase;

        /// <summary>The region's remote marks, indexed by address / 16 (null on a single-threaded heap).</summary>
        public byte* MarkBase;

        /// <summary>The owning thread's id (<see cref="ThreadSlabs.Id"/>); 0 when abandoned. Changed under the lock.</summary>
        public nint Owner;

        public uint ObjectSize;
        public int Capacity;

        /// <summary>Objects from the slab's start that have been put on its free list so far; the rest were never handed
        /// out and are free without being on any list (the list is extended as the slab is used, not built whole).</summary>
        public int Linked;

        /// <summary>Objects not on the local list (live ones and those on the thread-free list).</summary>
        public int Used;

        public int ClassIndex;
        public int Shift;

        /// <summary>1 while the slab is on its owner's full list; set under the lock with a full fence.</summary>
        public int Full;

        /// <summary>1 while the slab is on its owner's stack of full slabs it freed into (<see cref="ClassSlabs.Reclaimable"/>).</summary>
        public int Reclaimable;

        /// <summary>The next slab on that stack.</summary>
        public Slab* NextReclaimable;
    }

    /// <summary>One class of one thread: its slabs with free objects (the first serves), its full slabs, and how many of
    /// the former are empty.</summary>
    internal struct ClassSlabs
    {
        public Slab* Head;
        public Slab* FullHead;
        public int EmptySlabs;

        /// <summary>Slabs of the class on this thread's lists: its next slab's size grows with them
        /// (<see cref="SizeClasses.SlabShiftFor"/>), so a class in heavy use gets large slabs and one in light use keeps small ones.</summary>
        public int SlabsHeld;

        /// <summary>Slabs the class has made so far (a single-threaded heap's slabs grow with it instead).</summary>
        public int SlabsMade;

        /// <summary>Full slabs the owner has freed into since the last locked call on the class: a stack only the owner
        /// changes (or the lock's holder, with the owner paused or exited), linked through <see cref="Slab.NextReclaimable"/>.</summary>
        public Slab* Reclaimable;
    }

    /// <summary>One region's page map (one entry per 1 KiB page: 0, a slab's descriptor, or on the first page of a large
    /// block cut to its length that length shifted left once with the low bit set), state bytes (one per 16-byte
    /// granule: 0, or 1 + the class of the live object starting there; written by the slab's owner only) and, on a heap
    /// with an owner per thread, remote marks (one per granule: set by another thread's free with one exchange, see
    /// <see cref="RemoteMark"/>).</summary>
    internal readonly struct Region : IRegion
    {
        public Region(ulong start, ulong end, bool withMarks)
        {
            Start = start;
            End = end;
            FirstPage = start >> PageShift;
            PageCount = ((end - 1) >> PageShift) - FirstPage + 1;
            Pages = (nint*)NativeMemory.AllocZeroed((nuint)PageCount, (nuint)sizeof(nint));
            StateCount = (end - start) >> GranuleShift;
            States = (byte*)NativeMemory.AllocZeroed((nuint)StateCount);
            Marks = withMarks ? RemoteMark.AllocateTable((nuint)StateCount) : null;
        }

        public ulong Start { get; }

        public ulong End { get; }

        public ulong FirstPage { get; }

        public ulong PageCount { get; }

        public nint* Pages { get; }

        public ulong StateCount { get; }

        public byte* States { get; }

        /// <summary>The remote marks, one per granule as <see cref="States"/>; null on a single-threaded heap.</summary>
        public byte* Marks { get; }

        /// <summary><see cref="States"/> shifted so that it is indexed by address / 16 directly.</summary>
        public byte* StateBase => States - (Start >> GranuleShift);

        /// <summary><see cref="Marks"/> shifted so that it is indexed by address / 16 directly.</summary>
        public byte* MarkBase => Marks == null ? null : Marks - (Start >> GranuleShift);

        public ulong MetadataBytes => (PageCount * (ulong)sizeof(nint)) + (Marks == null ? StateCount : 2 * StateCount);

        public void Free()
        {
            NativeMemory.Free(Pages);
            NativeMemory.Free(States);
            if (Marks != null)
            {
                RemoteMark.FreeTable(Marks, (nuint)StateCount);
            }
        }
    }
}
