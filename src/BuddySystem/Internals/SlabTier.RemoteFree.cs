namespace BuddySystem.Internals;

/// <summary>
/// The remote mark of a slab object: one byte per 16-byte granule beside the object state bytes, which only another
/// thread's free sets. The table is mapped anonymously on Linux, so the pages no remote free ever wrote stay the shared
/// zero page: the owner's reads of them cost no resident memory.
/// </summary>
internal static unsafe class RemoteMark
{
    /// <summary>No free from another thread is in flight.</summary>
    internal const byte Clear = 0;

    /// <summary>Another thread's free claimed the object (set with one compare-exchange from <see cref="Clear"/>).</summary>
    internal const byte Claimed = 1;

    /// <summary>The owner popped a free object that carried a claim (a racing double free) and now waits for the claiming
    /// thread to push it on the slab's thread-free list.</summary>
    internal const byte Acknowledged = 2;

    /// <summary>The claiming thread found the object free after its claim had been <see cref="Acknowledged"/>: it named the
    /// double free at its call, and the owner's collection does not report it again.</summary>
    internal const byte ReportedByClaimer = 3;

    private const nuint PageSize = 4096;

    /// <summary>A zeroed table of <paramref name="count"/> marks.</summary>
    /// <exception cref="OutOfMemoryException">The table cannot be mapped.</exception>
    internal static byte* AllocateTable(nuint count)
    {
        if (!OperatingSystem.IsLinux())
        {
            return (byte*)NativeMemory.AllocZeroed(count);
        }

        void* table = Libc.Mmap(null, RoundUp(count), Libc.ProtReadWrite, Libc.MapPrivate | Libc.MapAnonymous | Libc.MapNoReserve, -1, 0);
        if (table == (void*)-1)
        {
            throw new OutOfMemoryException($"Cannot map the remote marks of a region of {count * 16} bytes (errno {Marshal.GetLastPInvokeError()}).");
        }

        return (byte*)table;
    }

    /// <summary>Frees a table of <see cref="AllocateTable"/>.</summary>
    internal static void FreeTable(byte* table, nuint count)
    {
        if (OperatingSystem.IsLinux())
        {
            _ = Libc.Munmap(table, RoundUp(count));
        }
        else
        {
            NativeMemory.Free(table);
        }
    }

    private static nuint RoundUp(nuint count) => (count + PageSize - 1) & ~(PageSize - 1);
}

/// <summary>
/// Exactness without a locked instruction on the owner's paths: the protocol between a slab's owner, which writes the
/// object state bytes with plain stores, and the other threads, which claim an object's remote mark before they push it
/// on the slab's thread-free list. docs/concurrency.md states the protocol and what the interleaving test
/// (<c>ProtocolInterleavingTests</c>) proves of it.
/// </summary>
internal sealed unsafe partial class SlabTier
{
    /// <summary>The state of a free object the owner's pop found claimed by a racing free from another thread: it is on no
    /// list until the claiming thread's push reaches the owner's collection, which puts it back on the local list.</summary>
    internal const byte QuarantinedState = 0xFF;

    private readonly Action<InvalidOperationException>? _lateMisuseHandler;
    private readonly System.Collections.Concurrent.ConcurrentQueue<InvalidOperationException> _lateMisuses = new();
    private int _lateMisuseCount;

    /// <summary>What a claim of an object's remote mark found.</summary>
    private enum RemoteClaim
    {
        /// <summary>The object was live and is now this thread's to push on the slab's thread-free list.</summary>
        Claimed,

        /// <summary>Another free of the object is in flight: a double free, named at the call; nothing changed.</summary>
        AlreadyClaimed,

        /// <summary>The object is not live (after the claim): the claim was undone; the locked path names what it is.</summary>
        NotLive,

        /// <summary>The object is not live, but its owner's pop already saw the claim and waits for the object: it must
        /// still be pushed (its mark now says the claimer names the double free), and the call is named a double free.</summary>
        NotLiveAwaited,
    }

    /// <summary>
    /// Another thread's free of the object whose state byte is <paramref name="state"/> and remote mark
    /// <paramref name="mark"/>: claims the mark (one compare-exchange, a full fence), then reads the state again. The
    /// owner checks the mark before it frees or hands out an object, and checks the state of every object it collects,
    /// so of two frees of one object one is always named: here, at the owner's free, at its pop or at its collection.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static RemoteClaim ClaimRemote(byte* state, byte* mark, byte live)
    {
        if (Interlocked.CompareExchange(ref *mark, RemoteMark.Claimed, RemoteMark.Clear) != RemoteMark.Clear)
        {
            return RemoteClaim.AlreadyClaimed;
        }

        if (Volatile.Read(ref *state) == live)
        {
            return RemoteClaim.Claimed;
        }

        if (Interlocked.CompareExchange(ref *mark, RemoteMark.Clear, RemoteMark.Claimed) == RemoteMark.Claimed)
        {
            return RemoteClaim.NotLive;
        }

        // The owner leaves an acknowledged mark alone until it collects the object, which the caller's push publishes.
        *mark = RemoteMark.ReportedByClaimer;
        return RemoteClaim.NotLiveAwaited;
    }

    /// <summary>
    /// A free from a thread that does not own <paramref name="slab"/>, of the object at <paramref name="address"/> whose
    /// state read <paramref name="live"/>, with the caller busy (and no longer busy on return): claims it and pushes it on
    /// the slab's thread-free list; a claim that fails throws (a double free) or takes the locked path, which names it.
    /// </summary>
    [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
    private void FreeRemote(ThreadSlabs slabs, Slab* slab, ulong address, byte live, Layout layout)
    {
        ulong granule = address >> GranuleShift;
        switch (ClaimRemote(slab->StateBase + granule, slab->MarkBase + granule, live))
        {
            case RemoteClaim.Claimed:
                slabs.UserBytes -= (long)layout.Size;
                FreeMarkedObject(slabs, slab, (FreeObject*)address);
                return;
            case RemoteClaim.NotLiveAwaited:
                FreeMarkedObject(slabs, slab, (FreeObject*)address);
                ThrowNotAllocated(address, slab->ObjectSize);
                return;
            case RemoteClaim.AlreadyClaimed:
                slabs.ExitBusy();
                ThrowNotAllocated(address, slab->ObjectSize);
                return;
            default:
                slabs.ExitBusy();
                DeallocateSlow((void*)address, layout);
                return;
        }
    }

    /// <summary>
    /// The owner's pop found the object <paramref name="item"/> at the head of <paramref name="slab"/>'s local list with
    /// its remote mark set: another thread is freeing it again (a racing double free). When the claim stands, the object
    /// leaves the list unhanded (quarantined until the claiming thread's push reaches the collection, which reports the
    /// misuse unless the claimer named it at its call: exactly one report), and the pop finds nothing (false); when the
    /// claimer undid its claim (it named the double free itself), the object is handed out as usual (true).
    /// </summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    private bool TakeClaimedObject(Slab* slab, FreeObject* item)
    {
        ulong granule = (ulong)item >> GranuleShift;
        if (Interlocked.CompareExchange(ref slab->MarkBase[granule], RemoteMark.Acknowledged, RemoteMark.Claimed) != RemoteMark.Claimed)
        {
            return true;
        }

        slab->Free = item->Next;
        slab->StateBase[granule] = QuarantinedState;
        return false;
    }

    /// <summary>
    /// Moves the objects other threads freed into <paramref name="slab"/> to its local list, by the owner (in its busy
    /// window or under the lock) or with the owner paused or exited; how many went onto the list. Each must still be live: one that is not
    /// was freed twice (by the owner, and by another thread whose read of its state came before the owner's store), which
    /// is recorded and not counted again; one the owner quarantined goes back to the list uncounted (its pop counted none),
    /// recorded unless its claimer named the double free at its call.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private int CollectThreadFree(ClassSlabs* sizeClass, Slab* slab)
    {
        if (Volatile.Read(ref slab->ThreadFree) == 0)
        {
            return 0;
        }

        var item = (FreeObject*)Interlocked.Exchange(ref slab->ThreadFree, 0);
        byte live = (byte)(slab->ClassIndex + 1);
        int count = 0, moved = 0;
        while (item != null)
        {
            FreeObject* next = item->RemoteNext;
            ulong granule = (ulong)item >> GranuleShift;
            byte state = slab->StateBase[granule];
            bool waiting = state == live || state == QuarantinedState;
            if (!waiting || (state == QuarantinedState && slab->MarkBase[granule] != RemoteMark.ReportedByClaimer))
            {
                // Not waiting for this push (already on the local list, or in an outside cache): freed twice, the second
                // time recorded here; or quarantined by the owner's pop after a claim that named nothing.
                RecordLateMisuse((ulong)item, slab->ObjectSize);
            }

            if (waiting)
            {
                // The state first, then the mark: a later claim that sees the mark clear then reads "free".
                slab->StateBase[granule] = 0;
                item->Next = slab->Free;
                slab->Free = item;
                count += state == live ? 1 : 0;
                moved++;
            }

            Volatile.Write(ref slab->MarkBase[granule], RemoteMark.Clear);

            item = next;
        }

        slab->Used -= count;
        if (count != 0 && slab->Used == 0 && sizeClass != null)
        {
            sizeClass->EmptySlabs++;
        }

        return moved;
    }

    /// <summary>
    /// Whether no other thread has a claim on an object of the empty <paramref name="slab"/>, so that it may go back to the
    /// buddy engine: a claim on an object its owner already freed is a racing double free whose push may still come, and it
    /// must find the slab where it was. Under the lock, whose acquisition published the owner's state stores: a claim made
    /// after this look reads the state "free" and pushes nothing.
    /// </summary>
    private static bool NoRemoteFreeInFlight(Slab* slab)
    {
        if (slab->MarkBase == null)
        {
            return true;
        }

        ulong first = (ulong)slab->Start >> GranuleShift;
        int granules = (int)(((ulong)slab->Capacity * slab->ObjectSize) >> GranuleShift);
        return new ReadOnlySpan<byte>(slab->MarkBase + first, granules).IndexOfAnyExcept(RemoteMark.Clear) < 0;
    }

    /// <summary>Pushes <paramref name="item"/>, claimed, on <paramref name="slab"/>'s thread-free list through its second
    /// word (the local list links through the first, so an object on both lists in a race keeps both intact); true when
    /// the list was empty.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static bool PushThreadFree(Slab* slab, FreeObject* item)
    {
        nint head;
        do
        {
            head = Volatile.Read(ref slab->ThreadFree);
            item->RemoteNext = (FreeObject*)head;
        }
        while (Interlocked.CompareExchange(ref slab->ThreadFree, (nint)item, head) != head);
        return head == 0;
    }

    /// <summary>Remembers a misuse found after the call that made it returned, for <see cref="ReportLateMisuses"/>.</summary>
    private void RecordLateMisuse(ulong address, uint objectSize)
    {
        _lateMisuses.Enqueue(new InvalidOperationException(
            $"Cannot free {ThrowHelper.Hex(address)}: the block of {objectSize} bytes there was freed twice by two threads at once (a racing double free, found after both calls returned); the heap kept it once."));
        Interlocked.Increment(ref _lateMisuseCount);
    }

    /// <summary>
    /// Reports the misuses found after their calls returned: to the heap's handler
    /// (<see cref="BuddyHeapOptions.LateMisuseHandler"/>), or, with none, by failing fast with the message, as a corrupted
    /// heap would. Called at the end of the slow paths, outside the lock and every busy window.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal void ReportLateMisuses()
    {
        if (Volatile.Read(ref _lateMisuseCount) != 0)
        {
            ReportLateMisusesSlow();
        }
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private void ReportLateMisusesSlow()
    {
        while (_lateMisuses.TryDequeue(out InvalidOperationException? misuse))
        {
            Interlocked.Decrement(ref _lateMisuseCount);
            if (_lateMisuseHandler == null)
            {
                Environment.FailFast("BuddySystem: " + misuse.Message);
            }

            _lateMisuseHandler(misuse);
        }
    }

    /// <summary>
    /// For tests: the steps of another thread's free of <paramref name="ptr"/> after a read of its state that saw it live
    /// (as a read can while the owner's free of it still sits in the owner's store buffer): claims its mark and pushes it,
    /// without reading the state again. On a live object that is a free from another thread; on a free one it is the
    /// racing double free the owner's pop and collection must catch. Not a way to free anything.
    /// </summary>
    /// <exception cref="InvalidOperationException"><paramref name="ptr"/> is not an object of this heap's slabs, or its mark is
    /// claimed already.</exception>
    internal void ClaimAndPushAsAfterStaleRead(void* ptr)
    {
        ulong address = (ulong)ptr;
        using (HoldLock())
        {
            ThrowIfDisposed();
            int index = Regions.Find(_regions, address);
            nint entry = index < 0 ? 0 : _regions[index].Pages[(address >> PageShift) - _regions[index].FirstPage];
            if (entry == 0 || (entry & 1) != 0 || _single != null)
            {
                throw new InvalidOperationException($"{ThrowHelper.Hex(address)} is not an object of a slab with an owner per thread.");
            }

            var slab = (Slab*)entry;
            if (Interlocked.CompareExchange(ref slab->MarkBase[address >> GranuleShift], RemoteMark.Claimed, RemoteMark.Clear) != RemoteMark.Clear)
            {
                throw new InvalidOperationException($"the mark of {ThrowHelper.Hex(address)} is claimed already.");
            }

            PushThreadFree(slab, (FreeObject*)ptr);
        }
    }
}
