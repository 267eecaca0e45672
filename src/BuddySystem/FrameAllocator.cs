namespace BuddySystem;

/// <summary>
/// A buddy allocator of page-frame numbers with the API of the Rust crate <c>buddy_system_allocator</c>'s
/// <c>FrameAllocator</c>, which the rCore tutorial initialises before its heap: it hands out numbers, never touches the
/// frames, and keeps all of its metadata outside them.
/// </summary>
/// <remarks>
/// <para><b>Design.</b> A block of order k is 2^k frames and starts at a frame number that is a multiple of 2^k (absolute
/// numbers, so a block's buddy is <c>start ^ 2^k</c>). Ranges given to <see cref="AddFrames"/> are cut into the largest
/// such blocks. A hash map from a block's first frame to its state (free or allocated, and its order) finds a buddy in O(1);
/// per order, a min-heap of free blocks' first frames gives the lowest free block of that order; a 64-bit mask says which
/// orders have free blocks. Allocation is best fit: the smallest free block that serves the request, the lowest frame
/// number among equal blocks; a split hands out the lower half. A free merges with its buddy for as long as the buddy is
/// free and of the same order, up to the top order.</para>
/// <para><b>Unlike the crate.</b> A range starting at frame 0 is cut into the largest blocks that fit (the crate takes the
/// lowest set bit of 0 as 32 and cuts it into 32-frame blocks), and two free blocks of the top order stay two blocks (the
/// crate merges them into an order it has no list for, losing both).</para>
/// <para><b>Cost.</b> Allocate and Deallocate take O(orders) hash-map steps plus O(log n) heap steps, with no GC allocations
/// once the map and heaps have grown to the working set. A block merged away leaves a stale heap entry that is skipped
/// when met and swept when stale entries outnumber live ones. Metadata: about 40 bytes per block (free or allocated) and
/// 16 bytes per heap entry, independent of the number of frames.</para>
/// <para><b>Misuse.</b> Overlapping ranges, and deallocating frames that do not start an allocated block or with a count
/// that maps to another block size, throw <see cref="ArgumentException"/> naming the frame; nothing changes.</para>
/// <para><b>Thread safety.</b> None: use one thread at a time or lock around it.</para>
/// </remarks>
public sealed partial class FrameAllocator
{
    private const ushort StateFree = 0x100;
    private const ushort StateAllocated = 0x200;
    private const ushort OrderMask = 0xFF;

    private readonly int _orders;

    // First frame of every block, free or allocated -> state: StateFree | order, or StateAllocated | order | (the order the
    // caller's count maps to) << 10, so that Deallocate accepts the count given to AllocateAligned.
    private readonly Dictionary<ulong, ushort> _blocks = [];

    // Per order, the first frames of the free blocks of that order, lowest first; entries of blocks merged or handed out
    // since are stale and skipped (lazy deletion keeps Deallocate free of a heap search).
    private readonly PriorityQueue<ulong, ulong>[] _freeByOrder;
    private readonly long[] _freeCount;
    private ulong _nonEmptyOrders;
    private readonly List<ulong> _sweepScratch = [];
    private readonly List<(ulong Start, ulong End)> _ranges = [];
    private ulong _totalFrames;
    private ulong _allocatedFrames;

    /// <summary>Creates an allocator with no frames; give it frames with <see cref="AddFrames"/>.</summary>
    /// <param name="orders">The number of orders, as the crate's <c>ORDER</c> parameter: the largest block is
    /// 2^(<paramref name="orders"/> − 1) frames. Default 32, from 1 to 64.</param>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="orders"/> is outside [1, 64].</exception>
    public FrameAllocator(int orders = 32)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(orders, 1);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(orders, 64);
        _orders = orders;
        _freeByOrder = new PriorityQueue<ulong, ulong>[orders];
        for (int order = 0; order < orders; order++)
        {
            _freeByOrder[order] = new PriorityQueue<ulong, ulong>();
        }

        _freeCount = new long[orders];
    }

    /// <summary>The number of orders: blocks hold at most 2^(OrderCount − 1) frames.</summary>
    public int OrderCount => _orders;

    /// <summary>Frames added with <see cref="AddFrames"/>.</summary>
    public ulong TotalFrames => _totalFrames;

    /// <summary>Frames in allocated blocks (counts rounded up to their block size).</summary>
    public ulong AllocatedFrames => _allocatedFrames;

    /// <summary>Frames in free blocks.</summary>
    public ulong FreeFrames => _totalFrames - _allocatedFrames;

    /// <summary>A snapshot of the number of free blocks per order (index k: blocks of 2^k frames): a <c>/proc/buddyinfo</c> row.</summary>
    public IReadOnlyList<long> FreeBlocksByOrder => (long[])_freeCount.Clone();

    /// <summary>
    /// Adds the frames [<paramref name="start"/>, <paramref name="end"/>) (the crate's <c>add_frame</c>), cut into the
    /// largest blocks aligned to their size; a block that is the buddy of a free block already held merges with it.
    /// </summary>
    /// <param name="start">The first frame number; any value, including 0.</param>
    /// <param name="end">One past the last frame number. An empty range adds nothing.</param>
    /// <exception cref="ArgumentException"><paramref name="end"/> is below <paramref name="start"/>, or the range overlaps
    /// one added before (the message names both); nothing changes.</exception>
    public void AddFrames(ulong start, ulong end)
    {
        if (end < start)
        {
            ThrowHelper.ThrowArgument($"The frame range [{start}, {end}) ends before it starts.", nameof(end));
        }

        if (end == start)
        {
            return;
        }

        foreach ((ulong otherStart, ulong otherEnd) in _ranges)
        {
            if (start < otherEnd && otherStart < end)
            {
                ThrowHelper.ThrowArgument($"The frame range [{start}, {end}) overlaps the range [{otherStart}, {otherEnd}) added before.", nameof(start));
            }
        }

        _ranges.Add((start, end));
        _totalFrames += end - start;
        for (ulong cursor = start; cursor < end;)
        {
            // Frame 0 is aligned to every order: LargestFittingOrder counts its alignment as 63, not the crate's 32.
            int order = Orders.LargestFittingOrder(cursor, end, 0, _orders - 1);
            ulong size = 1UL << order;
            FreeAndMerge(cursor, order);
            cursor += size;
        }
    }

    /// <summary>
    /// Allocates a block of <paramref name="count"/> frames rounded up to a power of two, aligned to its size (the crate's
    /// <c>alloc</c>): the smallest free block that fits, the lowest frame number among equal ones, split handing out the
    /// lower half.
    /// </summary>
    /// <param name="count">Frames wanted; 0 gets one frame.</param>
    /// <returns>The first frame of the block; <see langword="null"/> when no free block is large enough (nothing changes).</returns>
    public ulong? Allocate(ulong count) => AllocateOrder(Orders.OrderFor(count, 1, 0), count);

    /// <summary>
    /// Allocates a block of max(<paramref name="count"/> rounded up to a power of two, <paramref name="align"/>) frames,
    /// aligned to its size (the crate's <c>alloc_aligned</c>); otherwise as <see cref="Allocate"/>.
    /// </summary>
    /// <param name="count">Frames wanted; 0 gets one frame.</param>
    /// <param name="align">Alignment of the first frame number, a power of two.</param>
    /// <returns>The first frame of the block; <see langword="null"/> when no free block is large enough (nothing changes).</returns>
    /// <exception cref="ArgumentException"><paramref name="align"/> is not a power of two.</exception>
    public ulong? AllocateAligned(ulong count, ulong align)
    {
        if (!BitOperations.IsPow2(align))
        {
            ThrowHelper.ThrowArgument($"Alignment {align} is not a power of two.", nameof(align));
        }

        return AllocateOrder(Orders.OrderFor(count, align, 0), count);
    }

    /// <summary>
    /// Frees the block starting at <paramref name="start"/> (the crate's <c>dealloc</c>) and merges it with its buddy for as
    /// long as the buddy is free and of the same order, up to the top order.
    /// </summary>
    /// <param name="start">The first frame returned by <see cref="Allocate"/> or <see cref="AllocateAligned"/>.</param>
    /// <param name="count">The count passed to that call (any count that rounds to the same power of two, or to the block
    /// size, will do).</param>
    /// <exception cref="ArgumentException"><paramref name="start"/> does not start an allocated block (never allocated,
    /// inside a block, or already freed), or <paramref name="count"/> maps to another block size. The message names the
    /// frame; nothing changes.</exception>
    public void Deallocate(ulong start, ulong count)
    {
        if (!_blocks.TryGetValue(start, out ushort state) || (state & StateAllocated) == 0)
        {
            string what = (state & StateFree) != 0 ? "it starts a free block (a double free?)" : "no allocated block starts there";
            ThrowHelper.ThrowArgument($"Cannot deallocate frames [{Describe(start)}, +{count}): {what}.", nameof(start));
        }

        int order = state & OrderMask;
        int requested = state >> 10;
        int countOrder = Orders.OrderFor(count, 1, 0);
        if (countOrder != order && countOrder != requested)
        {
            ThrowHelper.ThrowArgument(
                $"Cannot deallocate frames [{Describe(start)}, +{count}): the block there has {1UL << order} frames, and {count} frames do not map to it.",
                nameof(count));
        }

        _allocatedFrames -= 1UL << order;
        FreeAndMerge(start, order);
    }

    private ulong? AllocateOrder(int order, ulong count)
    {
        if (order >= _orders)
        {
            return null;
        }

        ulong candidates = _nonEmptyOrders >> order;
        if (candidates == 0)
        {
            return null;
        }

        int found = order + BitOperations.TrailingZeroCount(candidates);
        ulong start = TakeLowestFree(found);

        // Split down, handing out the lower half; each upper half is a free block of the next lower order.
        while (found > order)
        {
            found--;
            AddFree(start + (1UL << found), found);
        }

        int countOrder = Math.Min(Orders.OrderFor(count, 1, 0), 63);
        _blocks[start] = (ushort)(StateAllocated | order | (countOrder << 10));
        _allocatedFrames += 1UL << order;
        return start;
    }

    /// <summary>Marks [start, start + 2^order) free, merging with free buddies of the same order below the top order.</summary>
    private void FreeAndMerge(ulong start, int order)
    {
        // The buddy's state is read from the map, never searched for; merging stops below the top order so that two
        // top-order blocks stay two blocks (the crate loses both).
        while (order < _orders - 1)
        {
            ulong buddy = start ^ (1UL << order);
            if (!_blocks.TryGetValue(buddy, out ushort buddyState) || buddyState != (StateFree | order))
            {
                break;
            }

            RemoveFree(buddy, order);
            _blocks.Remove(start);
            start &= ~(1UL << order);
            order++;
        }

        AddFree(start, order);
    }

    private void AddFree(ulong start, int order)
    {
        _blocks[start] = (ushort)(StateFree | order);
        PriorityQueue<ulong, ulong> queue = _freeByOrder[order];
        queue.Enqueue(start, start);
        _freeCount[order]++;
        _nonEmptyOrders |= 1UL << order;
        if (queue.Count > (2 * _freeCount[order]) + 16)
        {
            SweepStale(order);
        }
    }

    /// <summary>Forgets a free block merged away; its heap entry goes stale and is skipped or swept later.</summary>
    private void RemoveFree(ulong start, int order)
    {
        _blocks.Remove(start);
        if (--_freeCount[order] == 0)
        {
            _nonEmptyOrders &= ~(1UL << order);
            _freeByOrder[order].Clear(); // every entry left is stale
        }
    }

    /// <summary>Removes and returns the lowest free block of <paramref name="order"/>, which has at least one.</summary>
    private ulong TakeLowestFree(int order)
    {
        PriorityQueue<ulong, ulong> queue = _freeByOrder[order];
        while (true)
        {
            ulong start = queue.Dequeue();
            if (IsFree(start, order))
            {
                _blocks.Remove(start);
                if (--_freeCount[order] == 0)
                {
                    _nonEmptyOrders &= ~(1UL << order);
                    queue.Clear();
                }

                return start;
            }
        }
    }

    private bool IsFree(ulong start, int order) => _blocks.TryGetValue(start, out ushort state) && state == (StateFree | order);

    /// <summary>Rebuilds one order's heap from its live entries, once stale entries outnumber them (amortised O(1) per entry).</summary>
    private void SweepStale(int order)
    {
        PriorityQueue<ulong, ulong> queue = _freeByOrder[order];
        List<ulong> starts = _sweepScratch;
        starts.Clear();
        foreach ((ulong start, _) in queue.UnorderedItems)
        {
            if (IsFree(start, order))
            {
                starts.Add(start);
            }
        }

        // A block freed, merged away and freed again can have two entries; keep one.
        starts.Sort();
        queue.Clear();
        for (int i = 0; i < starts.Count; i++)
        {
            if (i == 0 || starts[i] != starts[i - 1])
            {
                queue.Enqueue(starts[i], starts[i]);
            }
        }
    }

    private static string Describe(ulong frame) => frame.ToString(CultureInfo.InvariantCulture);
}
