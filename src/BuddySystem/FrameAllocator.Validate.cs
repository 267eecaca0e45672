namespace BuddySystem;

public sealed partial class FrameAllocator
{
    /// <summary>
    /// Checks every invariant and throws <see cref="HeapCorruptionException"/> on the first violation: blocks are aligned
    /// to their size and tile the added ranges exactly; every free block is in its order's heap and counted; no two free
    /// buddies of one order below the top coexist (eager merging); the frame counts add up.
    /// </summary>
    /// <remarks>Costs O(blocks · log blocks): for tests and diagnostics, not for hot paths.</remarks>
    /// <exception cref="HeapCorruptionException">An invariant does not hold; the message says which and where.</exception>
    public void Validate()
    {
        var blocks = new List<(ulong Start, int Order, bool Free)>(_blocks.Count);
        var freeCount = new long[_orders];
        ulong allocated = 0;
        foreach ((ulong start, ushort state) in _blocks)
        {
            int order = state & OrderMask;
            bool free = (state & StateFree) != 0;
            if (order >= _orders || free == ((state & StateAllocated) != 0) || (free && state != (StateFree | order)))
            {
                ThrowHelper.ThrowCorruption($"frame block {start} has the invalid state 0x{state:x4}.");
            }

            if ((start & ((1UL << order) - 1)) != 0)
            {
                ThrowHelper.ThrowCorruption($"frame block {start} of order {order} is not aligned to its size.");
            }

            if (free)
            {
                freeCount[order]++;
                ulong buddy = start ^ (1UL << order);
                if (order < _orders - 1 && IsFree(buddy, order))
                {
                    ThrowHelper.ThrowCorruption($"free frame blocks {start} and {buddy} are buddies of order {order} but were not merged.");
                }
            }
            else
            {
                allocated += 1UL << order;
            }

            blocks.Add((start, order, free));
        }

        for (int order = 0; order < _orders; order++)
        {
            if (freeCount[order] != _freeCount[order] || (freeCount[order] != 0) != ((_nonEmptyOrders & (1UL << order)) != 0))
            {
                ThrowHelper.ThrowCorruption($"order {order} holds {freeCount[order]} free blocks, but its count says {_freeCount[order]} and its mask bit {(_nonEmptyOrders >> order) & 1}.");
            }

            var queued = new HashSet<ulong>();
            foreach ((ulong start, _) in _freeByOrder[order].UnorderedItems)
            {
                queued.Add(start);
            }

            foreach ((ulong start, int blockOrder, bool free) in blocks)
            {
                if (free && blockOrder == order && !queued.Contains(start))
                {
                    ThrowHelper.ThrowCorruption($"free frame block {start} of order {order} is missing from its order's heap.");
                }
            }
        }

        if (allocated != _allocatedFrames)
        {
            ThrowHelper.ThrowCorruption($"allocated blocks hold {allocated} frames, but the count says {_allocatedFrames}.");
        }

        ValidateTiling(blocks);
    }

    /// <summary>Blocks sorted by start must cover the added ranges (touching ones joined) exactly, without overlap.</summary>
    private void ValidateTiling(List<(ulong Start, int Order, bool Free)> blocks)
    {
        var sorted = new List<(ulong Start, ulong End)>(_ranges);
        sorted.Sort();
        ulong total = 0;
        var joined = new List<(ulong Start, ulong End)>();
        foreach ((ulong start, ulong end) in sorted)
        {
            total += end - start;

            // A merged block may run on from one range into the next when the two touch.
            if (joined.Count > 0 && joined[^1].End == start)
            {
                joined[^1] = (joined[^1].Start, end);
            }
            else
            {
                joined.Add((start, end));
            }
        }

        blocks.Sort();
        int next = 0;
        foreach ((ulong start, ulong end) in joined)
        {
            for (ulong cursor = start; cursor < end; next++)
            {
                if (next >= blocks.Count || blocks[next].Start != cursor)
                {
                    ThrowHelper.ThrowCorruption($"frame {cursor} of the frames [{start}, {end}) does not start a block.");
                }

                ulong size = 1UL << blocks[next].Order;
                if (size > end - cursor)
                {
                    ThrowHelper.ThrowCorruption($"frame block {cursor} of {size} frames runs past the added frames [{start}, {end}).");
                }

                cursor += size;
            }
        }

        if (next != blocks.Count)
        {
            ThrowHelper.ThrowCorruption($"frame block {blocks[next].Start} lies outside every added range.");
        }

        if (total != _totalFrames)
        {
            ThrowHelper.ThrowCorruption($"the ranges hold {total} frames, but the count says {_totalFrames}.");
        }
    }
}
