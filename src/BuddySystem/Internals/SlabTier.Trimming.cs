namespace BuddySystem.Internals;

/// <summary>Trimming and accounting: empty slabs returned, exited threads' slabs abandoned, and the tier's totals
/// for its host, under the lock with the owners paused.</summary>
internal sealed unsafe partial class SlabTier
{
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
                        if (slab->Used == 0 && NoRemoteFreeInFlight(slab))
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
                if (slab->Used == 0 && NoRemoteFreeInFlight(slab))
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
        List<ThreadSlabs>? exited = null;
        foreach (ThreadSlabs owner in _owners)
        {
            if (owner.HasExited)
            {
                (exited ??= []).Add(owner);
            }
        }

        if (exited == null)
        {
            return false;
        }

        // Paused for good before its slabs go: a thread that now runs on the exited owner's stack may be using its slabs
        // (CallingThreadSlabs), and sees the pause and then the retired key.
        PausableOwner.PauseAll(exited);
        ForgetStacksLocked(exited);

        bool any = false;
        for (int i = _owners.Count - 1; i >= 0; i--)
        {
            ThreadSlabs owner = _owners[i];
            if (!exited.Contains(owner))
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
                        if (slab->Used == 0 && NoRemoteFreeInFlight(slab))
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
}
