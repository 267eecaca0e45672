namespace BuddySystem;

public sealed unsafe partial class BuddyHeap
{
    /// <summary>
    /// Checks every invariant of the metadata and throws <see cref="HeapCorruptionException"/> on the first violation:
    /// blocks tile each region exactly and are aligned to their size; free lists hold exactly the free blocks, with
    /// consistent links and mask bits; no two buddy-list blocks that are buddies of one order coexist (merging); every cached
    /// block sits in exactly one cache of its order, which holds no more than its bound; the byte counts add up.
    /// </summary>
    /// <remarks>Costs O(managed bytes / 16). For tests and diagnostics, not for hot paths.</remarks>
    /// <exception cref="HeapCorruptionException">An invariant does not hold; the message says which and where.</exception>
    /// <exception cref="ObjectDisposedException">The heap was disposed.</exception>
    public void Validate() => ValidateCore(null, 0, 0);

    /// <summary>
    /// <see cref="Validate"/> for a heap that is the core of a thread-safe front: <paramref name="externalCached"/> counts,
    /// per order, the cached blocks the front holds outside this heap's caches (already checked by the front), and the
    /// external figures are the live blocks the front handed out from its caches. Call it with the front quiescent.
    /// </summary>
    internal void ValidateCore(long[]? externalCached, ulong externalAllocated, long externalLive)
    {
        ThrowIfDisposed();
        var freeByOrder = new long[MaxOrder + 1];
        var cachedByOrder = new long[BuddyHeapOptions.MaxCachedOrderLimit + 1];
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

                int order = OrderOfState(state);
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
                else if (IsCachedState(state) && order <= BuddyHeapOptions.MaxCachedOrderLimit)
                {
                    free += size;
                    cachedByOrder[order]++;
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

        for (int order = 0; order <= BuddyHeapOptions.MaxCachedOrderLimit; order++)
        {
            long inCaches = (externalCached != null && order < externalCached.Length ? externalCached[order] : 0) +
                (order <= _maxCachedOrder ? CheckCache(_caches + order, order) : 0);
            if (inCaches != cachedByOrder[order])
            {
                ThrowHelper.ThrowCorruption($"the caches of order {order} hold {inCaches} blocks but the side table marks {cachedByOrder[order]} cached.");
            }
        }

        ulong expectedAllocated = _allocatedBytes + externalAllocated;
        long expectedLive = _liveBlocks + externalLive;
        if (allocated != expectedAllocated || live != expectedLive || total != _totalBytes || allocated + free != total)
        {
            ThrowHelper.ThrowCorruption($"accounting mismatch: side table has {allocated} allocated bytes in {live} blocks and {free} free of {total}; counters say {expectedAllocated} in {expectedLive} of {_totalBytes}.");
        }
    }

    /// <summary>
    /// Walks one cache: every block on it is in a region and marked cached of <paramref name="order"/>, the count matches,
    /// and the bound holds. Returns the number of blocks.
    /// </summary>
    internal long CheckCache(OrderCache* cache, int order)
    {
        long count = 0;
        for (CachedBlock* block = cache->Head; block != null; block = block->Next)
        {
            if (++count > cache->Capacity)
            {
                ThrowHelper.ThrowCorruption($"the cache of order {order} holds more than its bound of {cache->Capacity} blocks (or a cycle near {ThrowHelper.Hex((ulong)block)}).");
            }

            int index = FindRegion((ulong)block);
            if (index < 0 || ((ulong)block & ((ulong)MinBlockSize - 1)) != 0 ||
                _regions[index].States[((ulong)block - _regions[index].Start) >> MinShift] != (byte)(StateCached | order))
            {
                ThrowHelper.ThrowCorruption($"the cache of order {order} holds {ThrowHelper.Hex((ulong)block)}, which is not a cached block of that order.");
            }
        }

        if (count != cache->Count)
        {
            ThrowHelper.ThrowCorruption($"the cache of order {order} holds {count} blocks but counts {cache->Count}.");
        }

        return count;
    }
}
