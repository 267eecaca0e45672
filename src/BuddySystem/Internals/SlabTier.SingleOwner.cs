namespace BuddySystem.Internals;

/// <summary>The tier as a single-threaded heap's (<see cref="SlabHeap"/>): one owner of every slab, used by one thread at a
/// time, so the fast paths take no atomic instruction and no handshake; large requests are blocks cut to their length.</summary>
internal sealed unsafe partial class SlabTier
{
    /// <summary>The one owner of every slab of a single-threaded heap, which its host passes to the single-owner calls: the
    /// host reaches it with one load, not two through the tier.</summary>
    internal ThreadSlabs SingleOwner => _single ?? throw new InvalidOperationException("The tier has an owner per thread.");

    /// <summary>Allocates an object of <paramref name="layout"/>'s class (a request of the size classes) for
    /// <paramref name="owner"/>, the single owner (<see cref="SingleOwner"/>); null when it cannot be served, even after the empty slabs went back to the buddy engine.</summary>
    /// <exception cref="ObjectDisposedException">The heap was disposed.</exception>
    /// <remarks>Fast path: a pop from the class's first slab and one state byte store. A disposed tier's owner has no
    /// slabs, so the locked path throws.</remarks>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal void* AllocateSingle(ThreadSlabs owner, Layout layout)
    {
        int index = SizeClasses.IndexOf(layout.Size, layout.Align);
        ClassSlabs* sizeClass = owner.Classes + index;
        Slab* slab = sizeClass->Head;
        if (slab != null && slab->Free != null)
        {
            return TakeObject(owner, sizeClass, slab, index, layout.Size, checkMark: false);
        }

        return AllocateSlow(layout);
    }

    /// <summary>Frees an object for <paramref name="slabs"/>, the single owner (<see cref="SingleOwner"/>), with the checks
    /// and exceptions of <see cref="Deallocate"/> (<paramref name="layout"/> is a request of the size classes).</summary>
    /// <remarks>Fast path: the state byte says "live, of this class" and goes to 0 with a plain store, then a push on the
    /// slab's free list.</remarks>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal void DeallocateSingle(ThreadSlabs slabs, void* ptr, Layout layout)
    {
        ulong address = (ulong)ptr;
        if (address - slabs.HotStart < slabs.HotLength && (address & 15) == 0)
        {
            byte* state = slabs.HotStateBase + (address >> GranuleShift);
            if (*state == (byte)(SizeClasses.IndexOf(layout.Size, layout.Align) + 1))
            {
                *state = 0;
                var slab = (Slab*)slabs.HotPages[(address >> PageShift) - slabs.HotFirstPage];
                if (!TryReleaseOwnObject(slabs, slab, (FreeObject*)ptr, layout.Size, singleOwner: true))
                {
                    FreeMarkedObject(slabs, slab, (FreeObject*)ptr);
                }

                return;
            }
        }

        DeallocateSlow(ptr, layout);
    }

    /// <summary>
    /// Allocates a large request as a buddy block of max(next power of two of its size, its alignment) bytes cut to its
    /// size rounded up to 1 KiB, the tail given back at once (Linux's <c>alloc_pages_exact</c>); its first page-map entry
    /// holds the length. Null when no block can be had, even after the empty slabs went back.
    /// </summary>
    /// <exception cref="ObjectDisposedException">The heap was disposed.</exception>
    internal void* AllocateExact(Layout layout)
    {
        using (HoldLock())
        {
            ThrowIfDisposed();
            void* block = TakeExactLocked(layout);
            if (block == null && ReturnEmptySlabsLocked())
            {
                block = TakeExactLocked(layout);
            }

            if (block == null)
            {
                _failedAllocations++;
            }

            return block;
        }
    }

    private void* TakeExactLocked(Layout layout)
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
        _exactBytes += length;
        _exactBlocks++;
        _exactUserBytes += (long)layout.Size;
        _exactAllocations++;
        return block;
    }

    /// <summary>Resizes the checked large block at <paramref name="ptr"/> of <paramref name="length"/> bytes to a large
    /// <paramref name="newSize"/> in place: the same length stays, a shorter one gives its tail back, a longer one takes
    /// the free buddy blocks after it, as <see cref="BuddyHeap.TryResizeExact"/> allows; false when it must move.
    /// <paramref name="region"/> is the block's, from the check.</summary>
    private bool TryResizeExactLocked(void* ptr, Layout layout, nuint newSize, ulong length, in Region region)
    {
        if (SizeClasses.IsSmall(newSize, layout.Align))
        {
            return false;
        }

        ulong newLength = SlabHeap.LargeLength(newSize);
        if (newLength != length)
        {
            int order = Orders.OrderFor(layout.Size, layout.Align, GranuleShift);
            int newOrder = Orders.OrderFor(newSize, layout.Align, GranuleShift);
            if (newOrder > BuddyHeap.MaxOrder || newSize > (nuint.MaxValue >> 1) || !_buddy.TryResizeExact(ptr, order, length, newOrder, newLength))
            {
                return false;
            }

            region.Pages[((ulong)ptr >> PageShift) - region.FirstPage] = (nint)((newLength << 1) | 1);
            _exactBytes = _exactBytes + newLength - length;
        }

        _exactUserBytes += (long)newSize - (long)layout.Size;
        return true;
    }

    /// <summary>Frees a large block made by <see cref="AllocateExact"/> (<paramref name="layout"/> is above the size
    /// classes; <paramref name="slabs"/> is the single owner, <see cref="SingleOwner"/>) with the checks and exceptions of <see cref="Deallocate"/>; its pieces merge as usual.</summary>
    /// <remarks>Fast path: in the hot region, the block's first page-map entry holds exactly the length the layout maps
    /// to. Anything else (another region, a double free, an interior address, a wrong layout, a disposed heap) takes the
    /// checked path, which finds out which and throws.</remarks>
    internal void DeallocateExact(ThreadSlabs slabs, void* ptr, Layout layout)
    {
        ulong address = (ulong)ptr;
        ulong length = SlabHeap.LargeLength(layout.Size);
        if (address - slabs.HotStart < slabs.HotLength && (address & ((1UL << PageShift) - 1)) == 0)
        {
            nint* entry = slabs.HotPages + ((address >> PageShift) - slabs.HotFirstPage);
            if (*entry == (nint)((length << 1) | 1))
            {
                *entry = 0;
                ReleaseExact(ptr, length, layout.Size);
                return;
            }
        }

        DeallocateExactChecked(ptr, layout);
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private void DeallocateExactChecked(void* ptr, Layout layout)
    {
        using (HoldLock())
        {
            ThrowIfDisposed();
            nint entry = CheckLiveEntryLocked(ptr, layout, out Region region);

            // A large layout passes the check only for a large block of its length.
            _single!.SetHotRegion(region);
            region.Pages[((ulong)ptr >> PageShift) - region.FirstPage] = 0;
            ReleaseExact(ptr, (ulong)entry >> 1, layout.Size);
        }
    }

    private void ReleaseExact(void* ptr, ulong length, nuint userSize)
    {
        _exactBytes -= length;
        _exactBlocks--;
        _exactUserBytes -= (long)userSize;
        _buddy.FreeExact(ptr, length);
    }
}
