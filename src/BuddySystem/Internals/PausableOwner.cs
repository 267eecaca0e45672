namespace BuddySystem.Internals;

/// <summary>
/// The handshake between a thread's lock-free window on its own share of a concurrent front (its caches or slabs) and
/// the lock's holder that must read or change that share: the owner marks itself busy, then reads <see cref="IsPaused"/>;
/// the pauser sets paused on every owner, issues one process-wide barrier and waits for each to leave its window.
/// </summary>
/// <remarks>A base class, not an interface: its members are non-virtual, so the owners' fast paths call them directly.
/// The owner writes the busy flag only; the paused flag is written under the front's lock.</remarks>
internal abstract class PausableOwner
{
    private int _busy;
    private int _paused;
    private long _allocationsAtLastLook;

    /// <summary>Allocations the owner made (a counter of its own, written only by its thread); read by trimming.</summary>
    public long Allocations;

    // Deltas of the owner's calls, written only by its thread (or under the lock with it paused); a block freed on another
    // thread than the one that allocated it makes one of them negative, so only their sum over every owner means anything.
    // A thread's slabs leave the live counts at 0 and count only requested bytes: their slabs' use counts tell the rest.
    public long LiveBlocks;
    public long AllocatedBytes;
    public long UserBytes;

    /// <summary>Counts an allocation of a block of <paramref name="blockBytes"/> for a request of <paramref name="userSize"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void CountAllocation(ulong blockBytes, nuint userSize)
    {
        Allocations++;
        LiveBlocks++;
        AllocatedBytes += (long)blockBytes;
        UserBytes += (long)userSize;
    }

    /// <summary>Counts a free of a block of <paramref name="blockBytes"/> for a request of <paramref name="userSize"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void CountFree(ulong blockBytes, nuint userSize)
    {
        LiveBlocks--;
        AllocatedBytes -= (long)blockBytes;
        UserBytes -= (long)userSize;
    }

    /// <summary>Whether the owner has allocated nothing since the previous call (for trimming after a full collection).</summary>
    public bool IsIdleSinceLastLook()
    {
        long allocations = Volatile.Read(ref Allocations);
        bool idle = allocations == _allocationsAtLastLook;
        _allocationsAtLastLook = allocations;
        return idle;
    }

    /// <summary>Whether another thread holds the owner paused: the owner must take the locked path.</summary>
    public bool IsPaused
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        get => Volatile.Read(ref _paused) != 0;
    }

    /// <summary>Opens the owner's lock-free window; the owner then reads <see cref="IsPaused"/> before touching its share.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void EnterBusy() => Volatile.Write(ref _busy, 1);

    /// <summary>Closes the owner's lock-free window, publishing what it changed.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void ExitBusy() => Volatile.Write(ref _busy, 0);

    /// <summary>
    /// Pauses <paramref name="owners"/> (they take the locked path until <see cref="ResumeAll"/>) and waits until none is
    /// inside its lock-free window, so their shares may be read or changed under the lock.
    /// </summary>
    public static void PauseAll<TOwner>(List<TOwner> owners)
        where TOwner : PausableOwner
    {
        if (owners.Count == 0)
        {
            return;
        }

        foreach (TOwner owner in owners)
        {
            Volatile.Write(ref owner._paused, 1);
        }

        // Makes each owner's "busy" store visible here, or makes the owner see "paused": the other half of the handshake
        // costs the owners two plain stores and a load.
        Interlocked.MemoryBarrierProcessWide();
        foreach (TOwner owner in owners)
        {
            var spinner = default(SpinWait);
            while (Volatile.Read(ref owner._busy) != 0)
            {
                spinner.SpinOnce();
            }
        }
    }

    /// <summary>Lets <paramref name="owners"/> take their lock-free paths again; under the lock.</summary>
    public static void ResumeAll<TOwner>(List<TOwner> owners)
        where TOwner : PausableOwner
    {
        foreach (TOwner owner in owners)
        {
            Volatile.Write(ref owner._paused, 0);
        }
    }
}

/// <summary>The counters of <see cref="PausableOwner"/>s summed: of live owners, or folded in from exited ones.</summary>
internal struct OwnerCounters
{
    public long Allocations;
    public long LiveBlocks;
    public long AllocatedBytes;
    public long UserBytes;

    /// <summary>Adds <paramref name="owner"/>'s counters; under the lock, with the owner paused or exited.</summary>
    public void Add(PausableOwner owner)
    {
        Allocations += owner.Allocations;
        LiveBlocks += owner.LiveBlocks;
        AllocatedBytes += owner.AllocatedBytes;
        UserBytes += owner.UserBytes;
    }

    /// <summary>Folds the exited owner at <paramref name="index"/> into these counters and takes it out of
    /// <paramref name="owners"/> (the last one moves into its place); under the lock.</summary>
    public void RetireAt<TOwner>(List<TOwner> owners, int index)
        where TOwner : PausableOwner
    {
        Add(owners[index]);
        owners[index] = owners[^1];
        owners.RemoveAt(owners.Count - 1);
    }
}
