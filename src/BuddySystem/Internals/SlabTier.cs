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
/// the live object starting there (0 when none); only the slab's owner writes it, with plain stores. Another thread's free
/// first claims the object's remote mark (a second table of one byte per granule) with one compare-exchange and reads the
/// state again; the owner checks the mark at its free and at its pop, and every object's state at its collection, so of
/// two frees of one object racing on two threads one is always named, at its call or, when both calls missed the other,
/// before the object is handed out again (docs/concurrency.md, <c>SlabTier.RemoteFree.cs</c>). A free that fails its
/// checks (an interior pointer, a double free, a layout of another class, a block of the host's own) takes the locked
/// path, which names what is wrong, with the exceptions and messages of <see cref="BuddyHeap"/>, the heap unchanged.</para>
/// <para><b>Idle and exited threads.</b> An owner's fast paths run between two plain stores to a "busy" flag and first read a
/// "paused" flag (the asymmetric handshake of <see cref="PausableOwner"/>). Under the lock another thread may pause every
/// owner and then collect their thread-free lists and return their empty slabs: an allocation that would fail,
/// <see cref="Trim"/>, the host's statistics and <see cref="Validate"/> do. The slabs of a thread that has exited are
/// <i>abandoned</i>: empty ones go back to the buddy core, the others wait in a list per class until another thread needing
/// a slab of that class adopts them, or until they empty (frees into an abandoned slab go to its thread-free list).</para>
/// <para><b>Cost.</b> Allocation from a slab with a free object: the calling thread's slabs (found by its stack, else a
/// thread-static read), the handshake, a pop, a load of
/// the object's mark and one byte store. The owner's free: the handshake, loads of the state, the page-map entry, the
/// descriptor's owner and the mark, a byte store and a push; no atomic instruction. Another thread's free: the claim and
/// the push, two compare-exchanges. When a thread's first slab of a class runs dry, the thread takes the frees other
/// threads made into it, or links its next never-used objects, without the lock; it takes the lock to move on to
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

    // Owners recognised by their stacks instead of a thread-static read (which is a call under the JIT): slot i holds an
    // owner whose stack covers part of the i-th 1 MiB window (address / 1 MiB mod 64); set under the lock at registration,
    // cleared when the owner is reclaimed or the heap disposed.
    private StackOwners _stackOwners;

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
            ThreadSlabs? slabs = CallingThreadSlabs();
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
        ThreadSlabs? slabs = CallingThreadSlabs();
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
                    ReleaseOwnInHotRegion(slabs, slab, address, live, layout);
                    return;
                }
            }

            slabs.ExitBusy();
        }

        DeallocateSlow(ptr, layout);
    }

    /// <summary>The rest of the owner's lock-free free of an object of its <paramref name="slab"/>, once its state byte went
    /// from <paramref name="live"/> to 0, with the caller busy (and no longer busy on return). A free that must change the
    /// lists (it empties the slab, or frees into a full one) is undone and made again by the locked free, which finds the
    /// calling thread's slabs itself: <paramref name="slabs"/> may be an exited owner's, recognised by the stack this thread
    /// now runs on (<see cref="CallingThreadSlabs"/>), whose lists the reclaim may take as soon as the busy window closes.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private void ReleaseOwnInHotRegion(ThreadSlabs slabs, Slab* slab, ulong address, byte live, Layout layout)
    {
        if (TryReleaseOwnObject(slabs, slab, (FreeObject*)address, layout.Size, singleOwner: false))
        {
            slabs.ExitBusy();
            return;
        }

        ReleaseOwnLocked(slabs, address, live, layout);
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private void ReleaseOwnLocked(ThreadSlabs slabs, ulong address, byte live, Layout layout)
    {
        slabs.UserBytes += (long)layout.Size;
        slabs.HotStateBase[address >> GranuleShift] = live;
        slabs.ExitBusy();
        DeallocateSlow((void*)address, layout);
    }

    /// <summary>
    /// The common case of the owner's free, after the object's state byte went to 0 (the caller checked that
    /// <paramref name="slabs"/> owns the slab): counts it and pushes the object on the local list (a thread's full slab
    /// also goes on its class's stack of slabs to move back to the list of slabs with free objects,
    /// <see cref="DrainReclaimable"/>); false (and only counted) when the free empties the slab while it is full or its
    /// class already keeps an empty slab (it goes back): <see cref="FreeMarkedObject"/> does the rest. The single owner (<paramref name="singleOwner"/>)
    /// owns every slab and does not defer a full slab: its lock is its own, and its free into a full slab takes the locked
    /// path, which moves the slab back at once (deferring it there made the slab-heap fail a W3 allocation).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static bool TryReleaseOwnObject(ThreadSlabs slabs, Slab* slab, FreeObject* item, nuint userSize, bool singleOwner)
    {
        slabs.UserBytes -= (long)userSize;
        if (slab->Full != 0 && (singleOwner || slab->Used <= 1))
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
                        PushThreadFreeLocked(slab, item);
                        return;
                    case RemoteClaim.NotLiveAwaited:
                        PushThreadFreeLocked(slab, item);
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

    /// <summary>Pushes a claimed object on <paramref name="slab"/>'s thread-free list under the lock; the first push into a
    /// full slab moves it back to its owner's list of slabs with free objects.</summary>
    private void PushThreadFreeLocked(Slab* slab, FreeObject* item)
    {
        if (PushThreadFree(slab, item) && slab->Full == 1)
        {
            ReviveFullSlabLocked(slab);
        }
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
            _stackOwners = default;
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

    /// <summary>
    /// The slabs the calling thread last used, for the fast paths: the owner in the stack slot of the window the calling
    /// thread's stack is in, when the address of a local lies in that owner's stack (a stack belongs to one live thread; a
    /// thread that reuses an exited owner's stack gets the owner's slabs until the exit is reclaimed, which pauses the
    /// owner first, and then fails the key check), else the thread-static. Taking the address of a local costs nothing;
    /// the thread-static read is a call to <c>__tls_get_addr</c> under the JIT (docs/benchmarks.md, issue 31's
    /// attribution). Two stacks in one window: the second owner reads its thread-static.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private ThreadSlabs? CallingThreadSlabs()
    {
        byte here; // only its address is read: an address on the calling thread's stack
        ulong address = (ulong)&here;
        ThreadSlabs? owner = Volatile.Read(ref _stackOwners[(int)(address >> StackWindowShift) & (StackWindows - 1)]);
        return owner != null && address - owner.StackLow < owner.StackSize ? owner : t_slabs;
    }

    /// <summary>For tests: how many owners are recognised by their stacks now.</summary>
    internal int StackRecognisedOwners
    {
        get
        {
            using (HoldLock())
            {
                var distinct = new HashSet<ThreadSlabs>();
                foreach (ThreadSlabs? owner in _stackOwners)
                {
                    if (owner != null)
                    {
                        distinct.Add(owner);
                    }
                }

                return distinct.Count;
            }
        }
    }

    /// <summary>Puts <paramref name="owner"/> in the free slots of the windows its stack covers; under the lock.</summary>
    private void RecogniseByStackLocked(ThreadSlabs owner)
    {
        if (owner.StackSize == 0 || owner.StackSize > (ulong)StackWindows << StackWindowShift || _disposed)
        {
            return;
        }

        ulong last = (owner.StackLow + owner.StackSize - 1) >> StackWindowShift;
        for (ulong window = owner.StackLow >> StackWindowShift; window <= last; window++)
        {
            ref ThreadSlabs? slot = ref _stackOwners[(int)window & (StackWindows - 1)];
            if (slot == null)
            {
                Volatile.Write(ref slot, owner);
            }
        }
    }

    /// <summary>Takes <paramref name="owners"/> (paused, about to be retired) out of the stack slots; under the lock.</summary>
    private void ForgetStacksLocked(List<ThreadSlabs> owners)
    {
        for (int i = 0; i < StackWindows; i++)
        {
            if (_stackOwners[i] is { } owner && owners.Contains(owner))
            {
                Volatile.Write(ref _stackOwners[i], null);
            }
        }
    }

    private const int StackWindowShift = 20;
    private const int StackWindows = 64;

    /// <summary>The slots of <see cref="_stackOwners"/>.</summary>
    [InlineArray(StackWindows)]
    private struct StackOwners
    {
        private ThreadSlabs? _first;
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
                RecogniseByStackLocked(slabs);
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

    [System.Diagnostics.CodeAnalysis.DoesNotReturn]
    private static void ThrowNotABlock(ulong address)
        => ThrowHelper.ThrowArgument($"Cannot free {ThrowHelper.Hex(address)}: it is not the start of a block of this heap (an interior or never-allocated address).", "ptr");

    [System.Diagnostics.CodeAnalysis.DoesNotReturn]
    private static void ThrowNotAllocated(ulong address, ulong blockSize)
        => ThrowHelper.ThrowInvalidOperation($"Cannot free {ThrowHelper.Hex(address)}: the block of {blockSize} bytes there is not allocated (a double free, or a free block never handed out).");

    [System.Diagnostics.CodeAnalysis.DoesNotReturn]
    private static void ThrowWrongLayout(ulong address, Layout layout, ulong expected, ulong blockSize)
        => ThrowHelper.ThrowArgument($"Cannot free {ThrowHelper.Hex(address)} with {layout}: that layout maps to a block of {expected} bytes, but the block there has {blockSize} bytes.", "layout");
}
