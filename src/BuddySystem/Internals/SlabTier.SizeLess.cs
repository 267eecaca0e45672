namespace BuddySystem.Internals;

internal sealed unsafe partial class SlabTier
{
    /// <summary>
    /// The layout of the live object at <paramref name="ptr"/> for a size-less call (C's <c>free(p)</c>): its class, read
    /// from its state byte, so no per-allocation header is needed. The calling thread's hot region is read inside the
    /// busy/paused handshake; anything else is checked under the lock, which throws naming the address.
    /// </summary>
    /// <exception cref="ArgumentException"><paramref name="ptr"/> is not the start of a live object.</exception>
    /// <exception cref="InvalidOperationException">The object is not allocated (a double free).</exception>
    /// <exception cref="ObjectDisposedException">The heap was disposed.</exception>
    internal Layout LayoutOfLiveBlock(void* ptr)
    {
        ulong address = (ulong)ptr;
        ThreadSlabs? slabs = t_slabs;
        if (slabs != null && slabs.HeapKey == _threadKey && address - slabs.HotStart < slabs.HotLength && (address & 15) == 0)
        {
            slabs.EnterBusy();
            if (!slabs.IsPaused)
            {
                byte state = Volatile.Read(ref slabs.HotStateBase[address >> GranuleShift]);
                slabs.ExitBusy();
                if (IsHandedOut(state))
                {
                    return new Layout(SizeClasses.SizeOf(state - 1), 1);
                }
            }
            else
            {
                slabs.ExitBusy();
            }
        }

        return LayoutOfLiveBlockLocked(ptr);
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private Layout LayoutOfLiveBlockLocked(void* ptr)
    {
        using (HoldLock())
        {
            ThrowIfDisposed();
            Slab* slab = CheckLiveBlockLocked(ptr, new Layout(BuddyHeap.MinBlockSize, 1), out _, checkLayout: false);
            return new Layout(slab->ObjectSize, 1);
        }
    }
}
