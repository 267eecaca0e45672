using System.Diagnostics;

namespace BuddySystem;

public sealed unsafe partial class BuddyHeap
{
    /// <summary>
    /// Cuts the live block at <paramref name="block"/> of <paramref name="order"/> down to its first
    /// <paramref name="keep"/> bytes: the kept prefix becomes live blocks of the sizes of <paramref name="keep"/>'s binary
    /// digits, in decreasing order from the start, and the rest goes back to the free lists. Linux's
    /// <c>alloc_pages_exact</c>: a rounded-up large block does not hold its unused tail.
    /// </summary>
    /// <remarks>For <see cref="SlabHeap"/>'s large blocks, on an eager heap without hardening. <paramref name="keep"/> is a
    /// non-zero multiple of <see cref="MinBlockSize"/> not above the block. The tail halves cannot merge: their buddies are
    /// the kept pieces. Frees of the pieces, one by one, merge as usual.</remarks>
    internal void KeepPrefix(void* block, int order, ulong keep)
    {
        ulong address = (ulong)block;
        ref Region region = ref RegionOf(address);
        byte* states = region.States;
        ulong start = region.Start;
        ulong size = (ulong)MinBlockSize << order;
        _allocatedBytes -= size - keep;
        _userBytes -= Math.Min(_userBytes, size - keep);
        while (keep != size)
        {
            order--;
            ulong half = size >> 1;
            if (keep <= half)
            {
                // The upper half is wholly unused: free it; the current piece shrinks to the lower half.
                ulong upper = address + half;
                states[(upper - start) >> MinShift] = (byte)(StateFree | order);
                Push((FreeBlock*)upper, order);
                states[(address - start) >> MinShift] = (byte)(StateAllocated | order);
            }
            else
            {
                // The lower half is wholly kept: it stays live as its own block; the rest is cut from the upper half.
                states[(address - start) >> MinShift] = (byte)(StateAllocated | order);
                _liveBlocks++;
                address += half;
                keep -= half;
                states[(address - start) >> MinShift] = (byte)(StateAllocated | order);
            }

            size = half;
        }
    }

    /// <summary>
    /// Allocates a block of <paramref name="length"/> bytes (a non-zero multiple of <see cref="MinBlockSize"/>) cut from a
    /// buddy block of <paramref name="order"/>, aligned to that block's size, and gives the unused tail back at once
    /// (<see cref="KeepPrefix"/>); null when no block of that order is free. The slab engines' large blocks.
    /// </summary>
    internal void* AllocateExact(int order, ulong length)
    {
        Debug.Assert(_hardening == null && _maxCachedOrder < 0, "exact blocks are cut on an eager heap without hardening");
        void* block = AllocateOrder(order);
        if (block != null)
        {
            ulong blockSize = (ulong)MinBlockSize << order;
            _userBytes += blockSize;
            KeepPrefix(block, order, Math.Min(length, blockSize));
        }

        return block;
    }

    /// <summary>Frees a block made by <see cref="AllocateExact"/>: the kept prefix is one buddy block per binary digit
    /// of <paramref name="length"/>, largest first; each merges as usual.</summary>
    /// <remarks>The caller has checked that a live block of this length starts at <paramref name="block"/> (the tier's page
    /// map holds it), so the pieces are freed without the checks of <see cref="Deallocate"/>.</remarks>
    internal void FreeExact(void* block, ulong length)
    {
        ulong address = (ulong)block;
        ref Region region = ref RegionOf(address);
        _allocatedBytes -= length;
        _userBytes -= Math.Min(_userBytes, length);
        for (ulong remaining = length; remaining != 0;)
        {
            int pieceShift = Orders.FloorLog2(remaining);
            int order = pieceShift - MinShift;
            Debug.Assert(region.States[(address - region.Start) >> MinShift] == (byte)(StateAllocated | order), "a piece of an exact block is live");
            _liveBlocks--;
            FreeAndMerge(address, order, in region);
            address += 1UL << pieceShift;
            remaining -= 1UL << pieceShift;
        }
    }

    /// <summary>
    /// Resizes a block made by <see cref="AllocateExact"/> in place from <paramref name="length"/> to
    /// <paramref name="newLength"/> bytes (non-zero multiples of <see cref="MinBlockSize"/>): a shrink gives the bytes past
    /// the new length back; a growth takes the free blocks that follow the block, when they cover the new length. False,
    /// with nothing changed, when the block does not start at a multiple of a buddy block of <paramref name="newOrder"/>
    /// (the alignment its new layout promises), would pass its region's end, or is followed by a live block before the new
    /// length; and, as <see cref="ResizeInPlace"/> decides, when it would shrink below its buddy block of
    /// <paramref name="order"/> while a free block of an order in between waits elsewhere (moving there lets the old block
    /// merge back whole).
    /// </summary>
    /// <remarks>Afterwards the block is again one live buddy block per binary digit of its length, largest first, as
    /// <see cref="FreeExact"/> expects. O(orders) state bytes and list operations.</remarks>
    internal bool TryResizeExact(void* block, int order, ulong length, int newOrder, ulong newLength)
    {
        ulong start = (ulong)block;
        ref Region region = ref RegionOf(start);
        if ((start & (((ulong)MinBlockSize << newOrder) - 1)) != 0 || newLength > region.End - start
            || (newOrder < order && (_nonEmptyOrders & (((1UL << (order - newOrder)) - 1) << newOrder)) != 0))
        {
            return false;
        }

        byte* states = region.States;
        ulong regionStart = region.Start;
        ulong end = start + length;
        ulong newEnd = start + newLength;

        // A growth needs free blocks from the end up to the new end; a free block cannot straddle the end, which a live
        // piece precedes, so each starts where the previous one stops. The last may reach past the new end.
        ulong claimedEnd = end;
        while (claimedEnd < newEnd)
        {
            byte state = states[(claimedEnd - regionStart) >> MinShift];
            if ((state & StateFree) == 0)
            {
                return false;
            }

            claimedEnd += (ulong)MinBlockSize << (state & OrderMask);
        }

        for (ulong free = end; free < claimedEnd;)
        {
            ref byte state = ref states[(free - regionStart) >> MinShift];
            int freeOrder = state & OrderMask;
            Unlink((FreeBlock*)free, freeOrder);
            state = 0;
            free += (ulong)MinBlockSize << freeOrder;
        }

        SetPieceStates(states, regionStart, start, length, clear: true);
        SetPieceStates(states, regionStart, start, newLength, clear: false);
        _liveBlocks += BitOperations.PopCount(newLength) - BitOperations.PopCount(length);
        if (newLength >= length)
        {
            _allocatedBytes += newLength - length;
            _userBytes += newLength - length;
        }
        else
        {
            _allocatedBytes -= length - newLength;
            _userBytes -= Math.Min(_userBytes, length - newLength);
        }

        // What lies past the new end goes back, as the largest aligned blocks that fit, each merging as usual: the tail a
        // shrink cut off, or the part of the last free block a growth did not need.
        for (ulong address = newEnd, stop = Math.Max(end, claimedEnd); address < stop;)
        {
            int freedOrder = Orders.LargestFittingOrder(address, stop, MinShift, MaxOrder);
            FreeAndMerge(address, freedOrder, in region);
            address += (ulong)MinBlockSize << freedOrder;
        }

        return true;
    }

    /// <summary>Writes "allocated, of its order" (or clears) the state byte of each piece of a block of
    /// <paramref name="length"/> at <paramref name="start"/>: one piece per binary digit, largest first.</summary>
    private static void SetPieceStates(byte* states, ulong regionStart, ulong start, ulong length, bool clear)
    {
        ulong address = start;
        for (ulong remaining = length; remaining != 0;)
        {
            int shift = Orders.FloorLog2(remaining);
            states[(address - regionStart) >> MinShift] = clear ? (byte)0 : (byte)(StateAllocated | (shift - MinShift));
            address += 1UL << shift;
            remaining -= 1UL << shift;
        }
    }

    /// <summary>Whether <paramref name="address"/> starts a free block of the buddy lists (for misuse messages).</summary>
    internal bool StartsFreeBlock(ulong address)
    {
        int hint = _lastRegion;
        byte* state = StateSlot(address, ref hint);
        return state != null && (*state & StateFree) != 0;
    }
}
