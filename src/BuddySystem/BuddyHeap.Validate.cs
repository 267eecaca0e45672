using BuddySystem.Internals;

namespace BuddySystem;

public sealed unsafe partial class BuddyHeap
{
    /// <summary>
    /// Checks every invariant of the metadata and throws <see cref="HeapCorruptionException"/> on the first violation:
    /// blocks tile each region exactly and are aligned to their size; free lists hold exactly the free blocks, with
    /// consistent links and mask bits; no two free buddies of one order coexist (eager merging); the byte counts add up.
    /// </summary>
    /// <remarks>Costs O(managed bytes / 16). For tests and diagnostics, not for hot paths.</remarks>
    /// <exception cref="HeapCorruptionException">An invariant does not hold; the message says which and where.</exception>
    /// <exception cref="ObjectDisposedException">The heap was disposed.</exception>
    public void Validate()
    {
        ThrowIfDisposed();
        var freeByOrder = new long[MaxOrder + 1];
        ulong allocated = 0;
        ulong free = 0;
        long live = 0;
        ulong total = 0;

        foreach (Region region in _regions)
        {
            total += region.End - region.Start;
            ulong address = region.Start;
            while (address < region.End)
            {
                byte state = region.States[(address - region.Start) >> MinShift];
                if (state == 0)
                {
                    ThrowHelper.ThrowCorruption($"granule {ThrowHelper.Hex(address)} should start a block but its state is empty.");
                }

                int order = state & OrderMask;
                ulong size = (ulong)MinBlockSize << order;
                if ((address & (size - 1)) != 0 || size > region.End - address)
                {
                    ThrowHelper.ThrowCorruption($"block {ThrowHelper.Hex(address)} of {size} bytes is misaligned or runs past its region's end {ThrowHelper.Hex(region.End)}.");
                }

                for (ulong inner = address + MinBlockSize; inner < address + size; inner += MinBlockSize)
                {
                    if (region.States[(inner - region.Start) >> MinShift] != 0)
                    {
                        ThrowHelper.ThrowCorruption($"granule {ThrowHelper.Hex(inner)} lies inside block {ThrowHelper.Hex(address)} but has a state.");
                    }
                }

                if ((state & StateAllocated) != 0)
                {
                    allocated += size;
                    live++;
                }
                else if ((state & StateFree) != 0)
                {
                    free += size;
                    freeByOrder[order]++;
                    ulong buddy = address ^ size;
                    if (buddy >= region.Start && buddy + size <= region.End &&
                        region.States[(buddy - region.Start) >> MinShift] == (byte)(StateFree | order))
                    {
                        ThrowHelper.ThrowCorruption($"free blocks {ThrowHelper.Hex(address)} and {ThrowHelper.Hex(buddy)} are buddies of order {order} but were not merged.");
                    }
                }
                else
                {
                    ThrowHelper.ThrowCorruption($"block {ThrowHelper.Hex(address)} has the unknown state 0x{state:x2}.");
                }

                address += size;
            }
        }

        for (int order = 0; order <= MaxOrder; order++)
        {
            long count = 0;
            FreeBlock* previous = null;
            for (FreeBlock* block = _heads[order]; block != null; block = block->Next)
            {
                if (++count > freeByOrder[order])
                {
                    ThrowHelper.ThrowCorruption($"free list of order {order} holds more blocks than the side table marks free (a cycle or a stale entry near {ThrowHelper.Hex((ulong)block)}).");
                }

                int index = FindRegion((ulong)block);
                if (index < 0 || _regions[index].States[((ulong)block - _regions[index].Start) >> MinShift] != (byte)(StateFree | order))
                {
                    ThrowHelper.ThrowCorruption($"free list of order {order} holds {ThrowHelper.Hex((ulong)block)}, which is not a free block of that order.");
                }

                if (block->Prev != previous)
                {
                    ThrowHelper.ThrowCorruption($"free block {ThrowHelper.Hex((ulong)block)} has a back link that does not match its list.");
                }

                previous = block;
            }

            if (count != freeByOrder[order])
            {
                ThrowHelper.ThrowCorruption($"free list of order {order} holds {count} blocks but the side table marks {freeByOrder[order]} free.");
            }

            if ((count != 0) != ((_nonEmptyOrders & (1UL << order)) != 0))
            {
                ThrowHelper.ThrowCorruption($"the non-empty mask disagrees with free list of order {order}.");
            }
        }

        if (allocated != _allocatedBytes || live != _liveBlocks || total != _totalBytes || allocated + free != total)
        {
            ThrowHelper.ThrowCorruption($"accounting mismatch: side table has {allocated} allocated bytes in {live} blocks and {free} free of {total}; counters say {_allocatedBytes} in {_liveBlocks} of {_totalBytes}.");
        }
    }
}
