namespace BuddySystem.Internals;

/// <summary>The slab lifecycle: a thread's next slab with a free object (collected, extended, adopted or new), full
/// slabs revived, empty ones returned to the buddy engine, descriptors, and the slab lists.</summary>
internal sealed unsafe partial class SlabTier
{
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
            if (sizeClass->EmptySlabs < EmptySlabsKept || !NoRemoteFreeInFlight(slab))
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
}
