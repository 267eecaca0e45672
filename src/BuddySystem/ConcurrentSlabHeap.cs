using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using BuddySystem.Internals;

namespace BuddySystem;

/// <summary>
/// The thread-safe form of <see cref="SlabHeap"/>: the same size classes, slabs and exact large blocks over one buddy
/// engine, with per-thread slabs so that the common allocation and free take no lock, and frees from other threads pushed
/// on the slab with one atomic instruction.
/// </summary>
/// <remarks>
/// <para><b>Design.</b> Every thread that uses the heap owns its slabs: per size class, a list of slabs that may have free
/// objects (the first serves) and a list of full ones. Each slab keeps two free lists. The <i>local</i> list is touched only
/// by its owner: an allocation pops it, the owner's free pushes on it, with plain loads and stores. The <i>thread-free</i>
/// list takes the frees of every other thread, each pushed with one compare-exchange; the owner takes the whole list with
/// one exchange when its local list runs dry. This is mimalloc's design (Leijen, Zorn and de Moura, "Mimalloc: free list
/// sharding in action", 2019: a free list per page, a separate thread-free list per page for other threads' frees);
/// the code is this project's own. A full slab leaves its owner's list of slabs with free objects; the first free from
/// another thread into a full slab moves it back under the heap's lock (the owner marks a slab full with a full fence and
/// then looks at its thread-free list once more, so one of the two always sees the other). Slabs and large blocks come
/// from the buddy engine under the lock, and go back to it under the lock: each class of a thread keeps one empty slab
/// (hysteresis), further empty slabs go back at once. A freed large block of up to 64 KiB may instead stay in its freeing
/// thread's large cache (two per kept length), marked cached in its state byte, for that thread's next request of the same
/// length: W3-like mixes would otherwise take the lock twice per large block.</para>
/// <para><b>Misuse stays exact.</b> One state byte per 16-byte granule, outside the managed memory, holds the size class of
/// the live object starting there (0 when none). The owner's allocation stores it; every free turns it from the class of
/// the layout to 0 with one compare-exchange before anything else, so of two frees of one object racing on two threads
/// exactly one succeeds. A failed exchange (an interior pointer, a double free, a layout of another class) takes the locked
/// path, which names what is wrong, with the exceptions and messages of <see cref="BuddyHeap"/>, the heap unchanged.</para>
/// <para><b>Idle and exited threads.</b> An owner's fast paths run between two plain stores to a "busy" flag and first read a
/// "paused" flag (the asymmetric handshake of <see cref="ConcurrentHeap"/>). Under the lock another thread may pause every
/// owner and then collect their thread-free lists and return their empty slabs: an allocation that would fail,
/// <see cref="Trim"/>, <see cref="Stats"/> and <see cref="Validate"/> do. The slabs of a thread that has exited are
/// <i>abandoned</i>: empty ones go back to the buddy engine, the others wait in a list per class until another thread needing
/// a slab of that class adopts them, or until they empty (frees into an abandoned slab go to its thread-free list).</para>
/// <para><b>Cost.</b> Allocation from a slab with a free object: a thread-static read, the handshake, a pop and one byte
/// store. A free: the handshake, one compare-exchange on the state byte, a page-map read and a push (a compare-exchange
/// more when another thread owns the slab). A thread's slab runs dry about once per slab's worth of objects and then takes
/// the lock once.</para>
/// <para><b>Thread safety.</b> Every member is safe from any thread; any thread may free any block. <see cref="Stats"/> and
/// <see cref="Validate"/> are exact when no call is in flight on another thread. <see cref="Dispose"/> waits for calls in
/// progress on the owners' fast paths and makes every later call throw <see cref="ObjectDisposedException"/>.</para>
/// </remarks>
public sealed unsafe partial class ConcurrentSlabHeap : IAllocator, IHeapStatsSource, IDisposable
{
    private const int PageShift = SlabHeap.PageShift;
    private const int GranuleShift = 4;
    private const int EmptySlabsKept = 1;

    /// <summary>The state byte of a large block's first granule (object starts hold their class index + 1).</summary>
    private const byte LargeState = 0xFF;

    /// <summary>The state byte of a large block waiting in a thread's large cache: not allocated, so every free of it fails
    /// the compare-exchange from <see cref="LargeState"/> and is rejected under the lock as a double free.</summary>
    private const byte CachedLargeState = 0xFE;

    /// <summary>Large blocks a thread keeps per kept length after freeing them, for its next requests of the same length
    /// and alignment, so that a mix of 8-64 KiB requests (W3) does not take the lock twice per block. Kept lengths are exact
    /// (whole pages), so the cache is indexed by length; it is bounded in blocks per length and in bytes, and given back to
    /// the buddy engine by <see cref="Trim"/>, by an allocation that would fail otherwise and when the thread exits, so
    /// nothing stays stranded.</summary>
    private const int LargeCachePerLength = 2;

    /// <summary>The longest block a thread's large cache keeps (longer ones amortise the lock over more bytes).</summary>
    private const ulong LargeCacheMaxLength = 64 * 1024;

    /// <summary>The most bytes one thread's large cache holds.</summary>
    private const long LargeCacheBytes = 2L << 20;

    /// <summary>The alignment a size-less call passes for a large block, so that its layout never maps to a class.</summary>
    private const nuint LargeAlign = (nuint)SizeClasses.MaxSize << 1;

    // The slabs of the heap this thread used last: one thread-static read finds them on the fast paths.
    [ThreadStatic]
    private static ThreadSlabs? t_slabs;

    private readonly Lock _lock;
    private readonly BuddyHeap _buddy;

    // Set when the heap is the size-class tier of a ConcurrentHeap: the host owns the buddy engine, the lock and the
    // regions, and is asked to give back its own cached blocks before a slab cannot be had.
    private readonly Func<Layout, bool>? _reclaimHost;
    private readonly ThreadLocal<ThreadSlabs?> _slabsOfThread = new();
    private readonly List<ThreadSlabs> _owners = [];
    // Abandoned slabs per class (list heads), in a pinned array so the lists are linked through plain pointers.
    private readonly nint[] _abandoned = GC.AllocateArray<nint>(SizeClasses.Count, pinned: true);
    private readonly List<nint> _descriptors = [];
    private readonly List<IDisposable> _ownedRegions = [];

    private Region[] _regions = [];
    private Slab* _spareDescriptors;
    private volatile bool _disposed;

    // Under the lock: slabs and large blocks (the buddy side), failures, and the counters of exited threads.
    private ulong _slabBytes;
    private long _slabs;
    private long _slabsTaken;

    // The buddy engine's failed allocations that were tries for a slab (a host counts the allocation that failed once).
    private long _slabTakeFailures;
    private ulong _largeBytes;
    private long _largeBlocks;
    private long _largeUserBytes;
    private long _largeAllocations;
    private long _failedAllocations;
    private long _retiredAllocations;
    private long _retiredLiveBlocks;
    private long _retiredObjectBytes;
    private long _retiredUserBytes;

    /// <summary>Creates an empty heap; give it memory with <see cref="AddRegion(void*, nuint)"/>.</summary>
    public ConcurrentSlabHeap()
    {
        _lock = new Lock();
        _buddy = new BuddyHeap(BuddyHeapOptions.Eager);
    }

    /// <summary>The size-class tier of a host heap: slabs come from <paramref name="buddy"/> under <paramref name="hostLock"/>,
    /// regions are added with <see cref="AddRegionMetadata"/>, and <paramref name="reclaimHost"/> (under the lock) gives
    /// back the host's cached blocks when no slab can be had; true when it gave any.</summary>
    internal ConcurrentSlabHeap(BuddyHeap buddy, Lock hostLock, Func<Layout, bool> reclaimHost)
    {
        _lock = hostLock;
        _buddy = buddy;
        _reclaimHost = reclaimHost;
    }

    /// <summary>Whether this heap is a host's tier (see the internal constructor).</summary>
    private bool IsHosted => _reclaimHost != null;

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
        if (slabs != null && slabs.Heap == this && address - slabs.HotStart < slabs.HotLength)
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
        lock (_lock)
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

    /// <summary>Checks under the lock that <paramref name="ptr"/> is a live object <paramref name="layout"/> maps to (throws,
    /// naming the address, otherwise) and, when <paramref name="newSize"/> maps to the same class, keeps it in place and
    /// says so; false when it must move.</summary>
    internal bool TryResizeInPlace(void* ptr, Layout layout, nuint newSize)
    {
        ThreadSlabs slabs = CurrentSlabs();
        lock (_lock)
        {
            ThrowIfDisposed();
            var slab = (Slab*)CheckLiveBlockLocked(ptr, layout, out _);
            if (SizeClasses.IsSmall(newSize, layout.Align) && SizeClasses.IndexOf(newSize, layout.Align) == slab->ClassIndex)
            {
                slabs.UserBytes += (long)newSize - (long)layout.Size;
                return true;
            }

            return false;
        }
    }

    /// <summary>What a host adds to its own accounting for this tier: the tier's totals, read with every owner paused, under
    /// the lock (after <see cref="ReclaimExitedLocked"/>). Appends the start of every slab that is empty once its frees from
    /// other threads are collected to <paramref name="emptySlabsByOrder"/> (by buddy order): blocks an allocation that would
    /// fail gets back.</summary>
    internal TierTotals TotalsForHostLocked(List<nint>?[] emptySlabsByOrder)
    {
        {
            PausableOwner.PauseAll(_owners);
            try
            {
                ulong emptySlabBytes = 0;
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

                Totals totals = SumLocked();
                return new TierTotals(totals.ObjectBytes, totals.UserBytes, totals.LiveBlocks, totals.Allocations, _slabBytes, emptySlabBytes,
                    _slabs, _slabsTaken, _failedAllocations - _slabTakeFailures, MetadataBytesLocked());
            }
            finally
            {
                PausableOwner.ResumeAll(_owners);
            }
        }
    }

    private static ulong CollectEmptySlabs(Slab* head, List<nint>?[] byOrder)
    {
        ulong bytes = 0;
        for (Slab* slab = head; slab != null; slab = slab->Next)
        {
            int pending = 0;
            for (var item = (FreeObject*)Volatile.Read(ref slab->ThreadFree); item != null; item = item->Next)
            {
                pending++;
            }

            if (slab->Used == pending)
            {
                (byOrder[slab->Shift - GranuleShift] ??= []).Add((nint)slab->Start);
                bytes += 1UL << slab->Shift;
            }
        }

        return bytes;
    }

    /// <summary>The totals of a hosted tier (see <see cref="TotalsForHostLocked"/>); its failed allocations less the failed
    /// tries for a slab that the buddy engine counted too.</summary>
    internal readonly record struct TierTotals(long ObjectBytes, long UserBytes, long LiveObjects, long Allocations, ulong SlabBytes,
        ulong EmptySlabBytes, long Slabs, long SlabsTaken, long FailedAllocations, ulong MetadataBytes);

    /// <summary>
    /// Creates a heap over a new native region of <paramref name="size"/> bytes, aligned to the largest power of two not
    /// above it; the region is freed when the heap is disposed.
    /// </summary>
    /// <param name="size">Bytes to manage; at least 16.</param>
    /// <returns>A heap that owns its memory.</returns>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="size"/> is smaller than 16.</exception>
    /// <exception cref="OutOfMemoryException">The process could not get the memory.</exception>
    public static ConcurrentSlabHeap Create(nuint size)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(size, BuddyHeap.MinBlockSize);
        var heap = new ConcurrentSlabHeap();
        var region = NativeRegion.StartingAsOneBlock(size);
        heap.AddRegion(region.Pointer, region.Size);
        heap._ownedRegions.Add(region);
        return heap;
    }

    /// <summary>
    /// Adds the memory [<paramref name="start"/>, start + <paramref name="size"/>) to the heap under the lock, as
    /// <see cref="BuddyHeap.AddRegion(void*, nuint)"/> does (same rules and exceptions).
    /// </summary>
    /// <param name="start">First byte of the region. The memory must stay valid until the heap is disposed.</param>
    /// <param name="size">Bytes in the region.</param>
    /// <exception cref="ArgumentNullException"><paramref name="start"/> is null.</exception>
    /// <exception cref="ArgumentException">As for <see cref="BuddyHeap.AddRegion(void*, nuint)"/>; the heap is unchanged.</exception>
    /// <exception cref="ObjectDisposedException">The heap was disposed.</exception>
    /// <remarks>Metadata for the region (8 bytes per KiB of page map, one state byte per 16 bytes) is native memory.</remarks>
    public void AddRegion(void* start, nuint size)
    {
        lock (_lock)
        {
            ThrowIfDisposed();
            _buddy.AddRegion(start, size);
            AddRegionMetadata(start, size);
        }
    }

    /// <summary>Adds the page map and state bytes of a region the buddy engine has just taken; under the lock.</summary>
    internal void AddRegionMetadata(void* start, nuint size)
    {
        ulong raw = (ulong)start;
        var region = new Region((raw + 15) & ~15UL, (raw + size) & ~15UL);
        Region[] grown = Regions.Insert(_regions, region, out _);

        // Lock-free readers see the old table or the new one, both valid: regions are never removed before Dispose.
        Volatile.Write(ref _regions, grown);
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
    public void* Allocate(Layout layout)
    {
        if (SizeClasses.IsSmall(layout.Size, layout.Align))
        {
            ThreadSlabs? slabs = t_slabs;
            if (slabs != null && slabs.Heap == this)
            {
                int index = SizeClasses.IndexOf(layout.Size, layout.Align);
                ClassSlabs* sizeClass = slabs.Classes + index;
                slabs.EnterBusy();
                Slab* slab = sizeClass->Head;
                if (!slabs.IsPaused && slab != null && slab->Free != null)
                {
                    FreeObject* item = TakeObject(slabs, sizeClass, slab, index, layout.Size);
                    slabs.ExitBusy();
                    return item;
                }

                slabs.ExitBusy();
            }
        }
        else
        {
            void* cached = AllocateCachedLarge(layout);
            if (cached != null)
            {
                return cached;
            }
        }

        return AllocateSlow(layout);
    }

    /// <summary>A block of the calling thread's large cache with the kept length and alignment <paramref name="layout"/>
    /// needs, marked live again; null when there is none (or the thread has no slabs here, or is paused).</summary>
    private void* AllocateCachedLarge(Layout layout)
    {
        ThreadSlabs? slabs = t_slabs;
        if (slabs == null || slabs.Heap != this || slabs.LargeCacheCount == 0 || layout.Size > (nuint.MaxValue >> 1))
        {
            return null;
        }

        int order = Orders.OrderFor(layout.Size, layout.Align, GranuleShift);
        if (order > BuddyHeap.MaxOrder)
        {
            return null;
        }

        ulong length = Math.Min(SlabHeap.LargeLength(layout.Size), 1UL << (order + GranuleShift));
        if (length > LargeCacheMaxLength)
        {
            return null;
        }

        ulong alignMask = (1UL << (order + GranuleShift)) - 1;
        int pages = (int)(length >> PageShift);
        slabs.EnterBusy();
        if (!slabs.IsPaused)
        {
            int fill = slabs.LargeCacheFill[pages];
            if (fill != 0)
            {
                ref ulong slot = ref slabs.LargeCache[(pages * LargeCachePerLength) + fill - 1];
                ulong address = slot;
                if ((address & alignMask) == 0 && address - slabs.HotStart < slabs.HotLength)
                {
                    slot = 0;
                    slabs.LargeCacheFill[pages] = (byte)(fill - 1);
                    slabs.LargeCacheCount--;
                    Volatile.Write(ref slabs.HotStateBase[address >> GranuleShift], LargeState);
                    slabs.CachedLargeBytes -= (long)length;
                    slabs.LargeBytes += (long)length;
                    slabs.LargeBlocks++;
                    slabs.Allocations++;
                    slabs.UserBytes += (long)layout.Size;
                    slabs.ExitBusy();
                    return (void*)address;
                }
            }
        }

        slabs.ExitBusy();
        return null;
    }

    /// <summary>Frees the live large block at <paramref name="address"/> into the calling thread's large cache if it lies in
    /// the thread's hot region, has the kept length <paramref name="layout"/> maps to and the cache has room; false otherwise
    /// (nothing changed: the locked path frees it, or throws).</summary>
    private bool FreeLargeIntoCache(ThreadSlabs slabs, ulong address, Layout layout)
    {
        if (address - slabs.HotStart >= slabs.HotLength || (address & ((1UL << PageShift) - 1)) != 0
            || layout.Size > (nuint)LargeCacheMaxLength)
        {
            return false;
        }

        ulong length = SlabHeap.LargeLength(layout.Size);
        int pages = (int)(length >> PageShift);
        int fill = slabs.LargeCacheFill[pages];
        if (fill == LargeCachePerLength || slabs.CachedLargeBytes + (long)length > LargeCacheBytes)
        {
            return false;
        }

        ref nint page = ref slabs.HotPages[(address >> PageShift) - slabs.HotFirstPage];
        nint entry = (nint)((length << 1) | 1);
        slabs.EnterBusy();
        if (!slabs.IsPaused && Volatile.Read(ref page) == entry
            && Interlocked.CompareExchange(ref slabs.HotStateBase[address >> GranuleShift], CachedLargeState, LargeState) == LargeState)
        {
            if (Volatile.Read(ref page) != entry)
            {
                // Only a racing misuse can change the entry of a block this thread just found live: undo, let the lock decide.
                Volatile.Write(ref slabs.HotStateBase[address >> GranuleShift], LargeState);
                slabs.ExitBusy();
                return false;
            }

            slabs.LargeCache[(pages * LargeCachePerLength) + fill] = address;
            slabs.LargeCacheFill[pages] = (byte)(fill + 1);
            slabs.LargeCacheCount++;
            slabs.CachedLargeBytes += (long)length;
            slabs.LargeBytes -= (long)length;
            slabs.LargeBlocks--;
            slabs.UserBytes -= (long)layout.Size;
            slabs.ExitBusy();
            return true;
        }

        slabs.ExitBusy();
        return false;
    }

    /// <summary>Gives every block of <paramref name="owner"/>'s large cache back to the buddy engine; under the lock, with
    /// the owner paused or exited. True when there was any.</summary>
    private bool FlushLargeCacheLocked(ThreadSlabs owner)
    {
        int count = owner.LargeCacheCount;
        for (int pages = 0; count != 0 && pages < owner.LargeCacheFill.Length; pages++)
        {
            for (int i = 0; i < owner.LargeCacheFill[pages]; i++)
            {
                ref ulong slot = ref owner.LargeCache[(pages * LargeCachePerLength) + i];
                ulong address = slot;
                slot = 0;
                ref Region region = ref _regions[Regions.Find(_regions, address)];
                region.Pages[(address >> PageShift) - region.FirstPage] = 0;
                region.StateBase[address >> GranuleShift] = 0;
                _buddy.FreeExact((void*)address, (ulong)pages << PageShift);
            }

            owner.LargeCacheFill[pages] = 0;
        }

        owner.LargeCacheCount = 0;
        owner.CachedLargeBytes = 0;
        return count != 0;
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private void* AllocateSlow(Layout layout)
    {
        if (!SizeClasses.IsSmall(layout.Size, layout.Align))
        {
            lock (_lock)
            {
                ThrowIfDisposed();
                void* large = AllocateLargeLocked(layout);
                if (large == null && ReturnEmptySlabsLocked())
                {
                    large = AllocateLargeLocked(layout);
                }

                if (large == null)
                {
                    _failedAllocations++;
                }

                return large;
            }
        }

        ThreadSlabs slabs = CurrentSlabs();
        int index = SizeClasses.IndexOf(layout.Size, layout.Align);
        lock (_lock)
        {
            ThrowIfDisposed();
            Slab* slab = SlabWithFreeObjectLocked(slabs, index);
            if (slab == null && ReturnEmptySlabsLocked())
            {
                // Empty slabs kept by any thread, or abandoned ones, may be what keeps a buddy block from merging.
                slab = SlabWithFreeObjectLocked(slabs, index);
            }

            if (slab == null && _reclaimHost != null && _reclaimHost(layout))
            {
                slab = SlabWithFreeObjectLocked(slabs, index);
            }

            if (slab == null)
            {
                _failedAllocations++;
                return null;
            }

            return TakeObject(slabs, slabs.Classes + index, slab, index, layout.Size);
        }
    }

    /// <summary>
    /// Takes the first free object of <paramref name="slab"/>, a slab of <paramref name="slabs"/>' class
    /// <paramref name="index"/> with a free object: the slab counts one more use (no longer empty), the object's state byte
    /// names its class, and the thread counts the allocation.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static FreeObject* TakeObject(ThreadSlabs slabs, ClassSlabs* sizeClass, Slab* slab, int index, nuint userSize)
    {
        FreeObject* item = slab->Free;
        slab->Free = item->Next;
        if (slab->Used++ == 0)
        {
            sizeClass->EmptySlabs--;
        }

        slab->StateBase[(ulong)item >> GranuleShift] = (byte)(index + 1);
        slabs.CountAllocation(slab->ObjectSize, userSize);
        return item;
    }

    /// <summary>
    /// The thread's first slab of class <paramref name="index"/> with a free object on its local list, after collecting
    /// thread-free lists, moving dry slabs to the full list, adopting an abandoned slab or making a new one; null when none
    /// can be had.
    /// </summary>
    private Slab* SlabWithFreeObjectLocked(ThreadSlabs slabs, int index)
    {
        ClassSlabs* sizeClass = slabs.Classes + index;
        for (Slab* slab = sizeClass->Head; slab != null; slab = sizeClass->Head)
        {
            if (slab->Free != null || CollectThreadFree(sizeClass, slab) != 0)
            {
                return slab;
            }

            // Dry: the slab goes to the full list. The fence orders "full" before the last look at the thread-free list;
            // another thread's free pushes first and then reads "full", so one of the two sees the other.
            Unlink(ref sizeClass->Head, slab);
            PushFront(ref sizeClass->FullHead, slab);
            Interlocked.Exchange(ref slab->Full, 1);
            if (Volatile.Read(ref slab->ThreadFree) != 0)
            {
                Unlink(ref sizeClass->FullHead, slab);
                slab->Full = 0;
                PushFront(ref sizeClass->Head, slab);
            }
        }

        Slab* adopted = AdoptLocked(slabs, index);
        return adopted != null ? adopted : NewSlabLocked(slabs, index);
    }

    /// <summary>Moves the objects other threads freed into <paramref name="slab"/> to its local list; their count.</summary>
    private static int CollectThreadFree(ClassSlabs* sizeClass, Slab* slab)
    {
        if (Volatile.Read(ref slab->ThreadFree) == 0)
        {
            return 0;
        }

        var item = (FreeObject*)Interlocked.Exchange(ref slab->ThreadFree, 0);
        int count = 0;
        FreeObject* last = item;
        while (true)
        {
            count++;
            if (last->Next == null)
            {
                break;
            }

            last = last->Next;
        }

        last->Next = slab->Free;
        slab->Free = item;
        slab->Used -= count;
        if (slab->Used == 0 && sizeClass != null)
        {
            sizeClass->EmptySlabs++;
        }

        return count;
    }

    /// <summary>Takes an abandoned slab of class <paramref name="index"/> with a free object, if any, for <paramref name="slabs"/>.</summary>
    private Slab* AdoptLocked(ThreadSlabs slabs, int index)
    {
        ClassSlabs* sizeClass = slabs.Classes + index;
        while (_abandoned[index] != 0)
        {
            var slab = (Slab*)_abandoned[index];
            Unlink(ref *(Slab**)Unsafe.AsPointer(ref _abandoned[index]), slab);
            Volatile.Write(ref slab->Owner, slabs.Id);
            CollectThreadFree(null, slab);
            if (slab->Used == 0)
            {
                sizeClass->EmptySlabs++;
            }

            if (slab->Free != null)
            {
                PushFront(ref sizeClass->Head, slab);
                return slab;
            }

            PushFront(ref sizeClass->FullHead, slab);
            Interlocked.Exchange(ref slab->Full, 1);
            if (Volatile.Read(ref slab->ThreadFree) != 0)
            {
                Unlink(ref sizeClass->FullHead, slab);
                slab->Full = 0;
                PushFront(ref sizeClass->Head, slab);
                CollectThreadFree(sizeClass, slab);
                return slab;
            }
        }

        return null;
    }

    /// <summary>Takes a buddy block for a new slab of class <paramref name="index"/> owned by <paramref name="slabs"/>.</summary>
    private Slab* NewSlabLocked(ThreadSlabs slabs, int index)
    {
        long failedBefore = _buddy.Counters.FailedAllocations;
        void* block = SlabHeap.TakeSlabBlock(_buddy, index, slabs.Classes[index].SlabsMade, out int shift);
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
        slab->Owner = slabs.Id;

        slab->Free = (FreeObject*)SlabHeap.LinkObjects(block, slab->Capacity, objectSize);
        SlabHeap.MapSlabPages(region.Pages, region.FirstPage, block, shift, (nint)slab);
        ClassSlabs* sizeClass = slabs.Classes + index;
        PushFront(ref sizeClass->Head, slab);
        sizeClass->EmptySlabs++;
        sizeClass->SlabsMade++;
        _slabBytes += 1UL << shift;
        _slabs++;
        _slabsTaken++;
        return slab;
    }

    private void* AllocateLargeLocked(Layout layout)
    {
        int order = Orders.OrderFor(layout.Size, layout.Align, GranuleShift);
        if (order > BuddyHeap.MaxOrder || layout.Size > (nuint.MaxValue >> 1))
        {
            return null;
        }

        ulong length = Math.Min(SlabHeap.LargeLength(layout.Size), 1UL << (order + GranuleShift));
        void* block = _buddy.AllocateExact(order, length);
        if (block == null)
        {
            return null;
        }

        ref Region region = ref _regions[Regions.Find(_regions, (ulong)block)];
        region.Pages[((ulong)block >> PageShift) - region.FirstPage] = (nint)((length << 1) | 1);
        region.StateBase[(ulong)block >> GranuleShift] = LargeState;
        _largeBytes += length;
        _largeBlocks++;
        _largeUserBytes += (long)layout.Size;
        _largeAllocations++;
        return block;
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
    public void Deallocate(void* ptr, Layout layout)
    {
        ThreadSlabs? slabs = t_slabs;
        if (slabs != null && slabs.Heap == this && !SizeClasses.IsSmall(layout.Size, layout.Align))
        {
            if (FreeLargeIntoCache(slabs, (ulong)ptr, layout))
            {
                return;
            }
        }
        else if (slabs != null && slabs.Heap == this)
        {
            ulong address = (ulong)ptr;
            if (address - slabs.HotStart < slabs.HotLength && (address & 15) == 0)
            {
                byte expected = (byte)(SizeClasses.IndexOf(layout.Size, layout.Align) + 1);
                slabs.EnterBusy();
                if (!slabs.IsPaused && Interlocked.CompareExchange(ref slabs.HotStateBase[address >> GranuleShift], 0, expected) == expected)
                {
                    var slab = (Slab*)slabs.HotPages[(address >> PageShift) - slabs.HotFirstPage];
                    var item = (FreeObject*)ptr;
                    slabs.CountFree(slab->ObjectSize, layout.Size);
                    if (slab->Owner == slabs.Id)
                    {
                        // The owner's free: a push, unless the slab was full (it must rejoin the list of slabs with free
                        // objects) or empties while its class already keeps an empty slab (it goes back): both under the lock.
                        ClassSlabs* sizeClass = slabs.Classes + slab->ClassIndex;
                        if (slab->Full == 0 && (slab->Used > 1 || sizeClass->EmptySlabs < EmptySlabsKept))
                        {
                            item->Next = slab->Free;
                            slab->Free = item;
                            if (--slab->Used == 0)
                            {
                                sizeClass->EmptySlabs++;
                            }

                            slabs.ExitBusy();
                            return;
                        }

                        slabs.ExitBusy();
                        lock (_lock)
                        {
                            // The object is this thread's and already marked free: no check is left, only the lists
                            // (unless the heap was disposed meanwhile, and the lists with it).
                            if (!_disposed)
                            {
                                ReleaseOwnObjectLocked(slabs, slab, item);
                            }
                        }

                        return;
                    }

                    bool wasEmpty = PushThreadFree(slab, item);
                    slabs.ExitBusy();
                    if (wasEmpty && Volatile.Read(ref slab->Full) == 1)
                    {
                        lock (_lock)
                        {
                            ReviveFullSlabLocked(slab);
                        }
                    }

                    return;
                }

                slabs.ExitBusy();
            }
        }

        DeallocateSlow(ptr, layout);
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private void DeallocateSlow(void* ptr, Layout layout)
    {
        ThrowIfDisposed();
        ThreadSlabs slabs = CurrentSlabs();
        lock (_lock)
        {
            ThrowIfDisposed();
            while (true)
            {
                nint entry = CheckLiveBlockLocked(ptr, layout, out Region region);
                slabs.SetHotRegion(region);
                ulong address = (ulong)ptr;
                if ((entry & 1) != 0)
                {
                    if (Interlocked.CompareExchange(ref region.StateBase[address >> GranuleShift], 0, LargeState) != LargeState)
                    {
                        // Another thread's lock-free free into its large cache took it: check again, which throws.
                        continue;
                    }

                    FreeLargeLocked(address, (ulong)entry >> 1, layout.Size, ref region);
                    return;
                }

                var slab = (Slab*)entry;
                byte expected = (byte)(slab->ClassIndex + 1);
                if (Interlocked.CompareExchange(ref slab->StateBase[address >> GranuleShift], 0, expected) != expected)
                {
                    // Another thread's lock-free free took it between the check and here: check again, which throws.
                    continue;
                }

                var item = (FreeObject*)ptr;
                slabs.CountFree(slab->ObjectSize, layout.Size);
                if (slab->Owner == slabs.Id)
                {
                    ReleaseOwnObjectLocked(slabs, slab, item);
                }
                else if (PushThreadFree(slab, item) && slab->Full == 1)
                {
                    ReviveFullSlabLocked(slab);
                }

                return;
            }
        }
    }

    /// <summary>Pushes <paramref name="item"/> on <paramref name="slab"/>'s thread-free list; true when the list was empty.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static bool PushThreadFree(Slab* slab, FreeObject* item)
    {
        nint head;
        do
        {
            head = Volatile.Read(ref slab->ThreadFree);
            item->Next = (FreeObject*)head;
        }
        while (Interlocked.CompareExchange(ref slab->ThreadFree, (nint)item, head) != head);
        return head == 0;
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
    private void ReleaseOwnObjectLocked(ThreadSlabs slabs, Slab* slab, FreeObject* item)
    {
        ClassSlabs* sizeClass = slabs.Classes + slab->ClassIndex;
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
                ReturnSlabLocked(slab);
            }
        }
    }

    /// <summary>Gives an empty slab, already out of every list, back to the buddy engine; its descriptor is kept for reuse.</summary>
    private void ReturnSlabLocked(Slab* slab)
    {
        ref Region region = ref _regions[Regions.Find(_regions, (ulong)slab->Start)];
        new Span<nint>(region.Pages + (((ulong)slab->Start >> PageShift) - region.FirstPage), 1 << (slab->Shift - PageShift)).Clear();
        nuint size = (nuint)1 << slab->Shift;
        _buddy.Deallocate(slab->Start, new Layout(size, size));
        _slabBytes -= size;
        _slabs--;

        // Descriptors are never freed before Dispose: a free racing on another thread may still read this one's fields.
        *slab = default;
        slab->Next = _spareDescriptors;
        _spareDescriptors = slab;
    }

    private Slab* TakeDescriptorLocked()
    {
        Slab* slab = _spareDescriptors;
        if (slab != null)
        {
            _spareDescriptors = slab->Next;
            *slab = default;
            return slab;
        }

        slab = (Slab*)NativeMemory.AllocZeroed((nuint)sizeof(Slab));
        _descriptors.Add((nint)slab);
        return slab;
    }

    private void FreeLargeLocked(ulong address, ulong length, nuint userSize, ref Region region)
    {
        region.Pages[(address >> PageShift) - region.FirstPage] = 0;
        region.StateBase[address >> GranuleShift] = 0;
        _largeBytes -= length;
        _largeBlocks--;
        _largeUserBytes -= (long)userSize;
        _buddy.FreeExact((void*)address, length);
    }

    /// <summary>
    /// Checks under the lock that <paramref name="ptr"/> is a live object or large block that <paramref name="layout"/>
    /// maps to and returns its page-map entry; throws, naming the address, before anything changes.
    /// </summary>
    private nint CheckLiveBlockLocked(void* ptr, Layout layout, out Region region, bool checkLayout = true)
    {
        ulong address = (ulong)ptr;
        int regionIndex = Regions.FindForFree(_regions, ptr);

        region = _regions[regionIndex];
        nint entry = region.Pages[(address >> PageShift) - region.FirstPage];
        ulong expected = SlabHeap.BlockSizeFor(layout);
        bool expectedSmall = SizeClasses.IsSmall(layout.Size, layout.Align);
        if (entry != 0 && (entry & 1) == 0)
        {
            var slab = (Slab*)entry;
            ulong offset = address - (ulong)slab->Start;
            if (offset % slab->ObjectSize != 0 || offset / slab->ObjectSize >= (ulong)slab->Capacity)
            {
                SlabHeap.ThrowNotABlock(address);
            }

            if (slab->StateBase[address >> GranuleShift] == 0)
            {
                SlabHeap.ThrowNotAllocated(address, slab->ObjectSize);
            }

            if (checkLayout && (!expectedSmall || SizeClasses.IndexOf(layout.Size, layout.Align) != slab->ClassIndex))
            {
                SlabHeap.ThrowWrongLayout(address, layout, expected, slab->ObjectSize);
            }

            return entry;
        }

        if (entry != 0 && (address & ((1UL << PageShift) - 1)) == 0)
        {
            ulong blockSize = (ulong)entry >> 1;
            if (region.StateBase[address >> GranuleShift] != LargeState)
            {
                // Freed into a thread's large cache: as much a double free as a block given back to the buddy engine.
                SlabHeap.ThrowNotAllocated(address, blockSize);
            }

            if (checkLayout && (expectedSmall || expected != blockSize))
            {
                SlabHeap.ThrowWrongLayout(address, layout, expected, blockSize);
            }

            return entry;
        }

        if (IsHosted)
        {
            // Not a slab: the host's own block, or nothing. The buddy engine names what is wrong with freeing it as an
            // object (null, outside, interior, not allocated); a live block of the host's is the wrong layout.
            int order = _buddy.CheckLiveBlock(ptr, layout, out _, checkLayout: false);
            SlabHeap.ThrowWrongLayout(address, layout, expected, (ulong)BuddyHeap.MinBlockSize << order);
        }

        if ((address & 15) == 0 && _buddy.StartsFreeBlock(address))
        {
            ThrowHelper.ThrowInvalidOperation($"Cannot free {ThrowHelper.Hex(address)}: the memory there is not allocated (a double free, or a free block never handed out).");
        }

        SlabHeap.ThrowNotABlock(address);
        return 0;
    }

    /// <summary>
    /// Resizes a block. When the new size maps to the same class (or large length) the block stays where it is;
    /// otherwise a new block is allocated, the bytes copied, and the old block freed.
    /// </summary>
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
        ThrowIfDisposed();
        ThreadSlabs slabs = CurrentSlabs();
        lock (_lock)
        {
            ThrowIfDisposed();
            nint entry = CheckLiveBlockLocked(ptr, layout, out _);
            bool sameSmall = (entry & 1) == 0 && SizeClasses.IsSmall(newSize, layout.Align)
                && SizeClasses.IndexOf(newSize, layout.Align) == ((Slab*)entry)->ClassIndex;
            bool sameLarge = (entry & 1) != 0 && !SizeClasses.IsSmall(newSize, layout.Align)
                && SlabHeap.LargeLength(newSize) == (ulong)entry >> 1;
            if (sameSmall)
            {
                slabs.UserBytes += (long)newSize - (long)layout.Size;
                return ptr;
            }

            if (sameLarge)
            {
                _largeUserBytes += (long)newSize - (long)layout.Size;
                return ptr;
            }
        }

        return Moves.AllocateCopyFree(this, ptr, layout, newSize);
    }

    /// <summary>
    /// Returns every empty slab of every thread (the ones kept for hysteresis too), and of exited threads, to the buddy
    /// engine, after collecting the frees other threads made into them, and every thread's cached large blocks.
    /// </summary>
    /// <exception cref="ObjectDisposedException">The heap was disposed.</exception>
    public void Trim()
    {
        lock (_lock)
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
        bool flushed = false;
        PausableOwner.PauseAll(owners);
        try
        {
            foreach (ThreadSlabs owner in owners)
            {
                flushed |= FlushLargeCacheLocked(owner);
                for (int index = 0; index < SizeClasses.Count; index++)
                {
                    ClassSlabs* sizeClass = owner.Classes + index;
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
        return _slabs != before || flushed;
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
            if (owner.Thread.IsAlive)
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

            FlushLargeCacheLocked(owner);
            _largeBlocks += owner.LargeBlocks;
            _largeBytes = (ulong)((long)_largeBytes + owner.LargeBytes);
            _retiredAllocations += owner.Allocations;
            _retiredLiveBlocks += owner.LiveBlocks;
            _retiredObjectBytes += owner.ObjectBytes;
            _retiredUserBytes += owner.UserBytes;
            owner.Retire();
            _owners[i] = _owners[^1];
            _owners.RemoveAt(_owners.Count - 1);
            any = true;
        }

        return any;
    }

    /// <summary>A snapshot of the heap's accounting, as <see cref="SlabHeap.Stats"/> defines it, summed over every thread.</summary>
    /// <remarks>Pauses every owner while it reads; exact when no call is in flight on another thread. Abandons the slabs of
    /// exited threads first.</remarks>
    /// <exception cref="ObjectDisposedException">The heap was disposed.</exception>
    public HeapStats Stats
    {
        get
        {
            lock (_lock)
            {
                ThrowIfDisposed();
                ReclaimExitedLocked();
                PausableOwner.PauseAll(_owners);
                try
                {
                    Totals totals = SumLocked();
                    HeapStats buddy = _buddy.Stats;
                    ulong allocated = (ulong)totals.ObjectBytes + (ulong)totals.LargeBytes;
                    return buddy with
                    {
                        UserBytes = (ulong)Math.Max(0, totals.UserBytes),
                        AllocatedBytes = allocated,
                        FreeBytes = buddy.TotalBytes - allocated,
                        CachedBytes = _slabBytes - (ulong)totals.ObjectBytes + (ulong)totals.CachedLargeBytes,
                        MetadataBytes = buddy.MetadataBytes + MetadataBytesLocked(),
                        LiveBlocks = totals.LiveBlocks,
                        Allocations = totals.Allocations,
                        FailedAllocations = _failedAllocations,
                    };
                }
                finally
                {
                    PausableOwner.ResumeAll(_owners);
                }
            }
        }
    }

    /// <summary>Number of slabs the heap holds now (owned, kept empty or abandoned).</summary>
    public long SlabCount
    {
        get
        {
            lock (_lock)
            {
                return _slabs;
            }
        }
    }

    private Totals SumLocked()
    {
        var totals = new Totals
        {
            Allocations = _retiredAllocations + _largeAllocations,
            LiveBlocks = _retiredLiveBlocks + _largeBlocks,
            ObjectBytes = _retiredObjectBytes,
            UserBytes = _retiredUserBytes + _largeUserBytes,
            LargeBlocks = _largeBlocks,
            LargeBytes = (long)_largeBytes,
        };
        foreach (ThreadSlabs owner in _owners)
        {
            totals.LargeBlocks += owner.LargeBlocks;
            totals.LargeBytes += owner.LargeBytes;
            totals.CachedLargeBytes += owner.CachedLargeBytes;
            totals.LiveBlocks += owner.LargeBlocks;
            totals.Allocations += owner.Allocations;
            totals.LiveBlocks += owner.LiveBlocks;
            totals.ObjectBytes += owner.ObjectBytes;
            totals.UserBytes += owner.UserBytes;
        }

        return totals;
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

    /// <summary>Frees the metadata and any region the heap owns. Calls in progress on other threads' fast paths are waited
    /// for; every later call throws <see cref="ObjectDisposedException"/>. Calling it again is harmless.</summary>
    /// <remarks>Memory added with <see cref="AddRegion"/> stays the caller's.</remarks>
    public void Dispose()
    {
        lock (_lock)
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
                NativeMemory.Free((void*)descriptor);
            }

            _descriptors.Clear();
            _spareDescriptors = null;
            Regions.FreeAll(ref _regions);
            if (!IsHosted)
            {
                _buddy.Dispose();
                Regions.DisposeOwned(_ownedRegions);
            }
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
    private ThreadSlabs CurrentSlabs()
    {
        ThreadSlabs? slabs = t_slabs;
        if (slabs != null && slabs.Heap == this)
        {
            return slabs;
        }

        ThrowIfDisposed();
        slabs = _slabsOfThread.Value;
        if (slabs == null)
        {
            slabs = new ThreadSlabs(this);
            lock (_lock)
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

    /// <summary>Counters summed over the threads, the exited ones and the large blocks.</summary>
    private struct Totals
    {
        public long Allocations;
        public long LiveBlocks;
        public long ObjectBytes;
        public long UserBytes;
        public long LargeBlocks;
        public long LargeBytes;
        public long CachedLargeBytes;
    }

    /// <summary>A free object's link, in its first word.</summary>
    internal struct FreeObject
    {
        public FreeObject* Next;
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

        /// <summary>The owning thread's id (<see cref="ThreadSlabs.Id"/>); 0 when abandoned. Changed under the lock.</summary>
        public nint Owner;

        public uint ObjectSize;
        public int Capacity;

        /// <summary>Objects not on the local list (live ones and those on the thread-free list).</summary>
        public int Used;

        public int ClassIndex;
        public int Shift;

        /// <summary>1 while the slab is on its owner's full list; set under the lock with a full fence.</summary>
        public int Full;
    }

    /// <summary>One class of one thread: its slabs with free objects (the first serves), its full slabs, and how many of
    /// the former are empty.</summary>
    internal struct ClassSlabs
    {
        public Slab* Head;
        public Slab* FullHead;
        public int EmptySlabs;

        /// <summary>Slabs this thread has made for the class: its next slab's size grows with it (<see cref="SizeClasses.SlabShiftFor"/>).</summary>
        public int SlabsMade;
    }

    /// <summary>One region's page map (one entry per 1 KiB page) and state bytes (one per 16-byte granule).</summary>
    internal readonly struct Region : IRegion
    {
        public Region(ulong start, ulong end)
        {
            Start = start;
            End = end;
            Pages = SlabHeap.NewPageMap(start, end, out ulong firstPage, out ulong pageCount);
            FirstPage = firstPage;
            PageCount = pageCount;
            StateCount = (end - start) >> GranuleShift;
            States = (byte*)NativeMemory.AllocZeroed((nuint)StateCount);
        }

        public ulong Start { get; }

        public ulong End { get; }

        public ulong FirstPage { get; }

        public ulong PageCount { get; }

        public nint* Pages { get; }

        public ulong StateCount { get; }

        public byte* States { get; }

        /// <summary><see cref="States"/> shifted so that it is indexed by address / 16 directly.</summary>
        public byte* StateBase => States - (Start >> GranuleShift);

        public ulong MetadataBytes => (PageCount * (ulong)sizeof(nint)) + StateCount;

        public void Free()
        {
            NativeMemory.Free(Pages);
            NativeMemory.Free(States);
        }
    }
}
