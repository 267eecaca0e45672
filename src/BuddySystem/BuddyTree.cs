namespace BuddySystem;

/// <summary>
/// An offset allocator over [0, capacity): the segment tree of the rCore tutorial's buddy system (after wuwenbin's
/// buddy2.c), keeping all of its metadata outside the managed space. It hands out offsets, not pointers, so it can manage
/// space the process cannot or should not write into: GPU buffers, file or disk space, shared memory, page frames (what
/// Vulkan Memory Allocator calls a virtual block).
/// </summary>
/// <remarks>
/// <para><b>Design.</b> A block of order k is <see cref="MinBlockSize"/> &lt;&lt; k bytes and starts at an offset that is a
/// multiple of its size. A complete binary tree covers [0, capacity) rounded up to a power of two: the root is the whole
/// space, each node's children are its two halves (buddies), the leaves are blocks of order 0. Each node holds one byte,
/// as in the seed: log2 of the largest free block below it, stored as <c>order + 1</c> so that 0 means none (the seed
/// stores log2 of bytes; counting from <see cref="MinBlockSize"/> keeps the same one byte and frees the value 0). A node
/// whose whole range is free holds its own order + 1; an allocated node holds 0 while its descendants keep the values they
/// had when it was wholly free; any other node holds <c>max(left, right)</c>, or its own order + 1 when both children are
/// wholly free (the buddies merge). Nodes that lie at or beyond the capacity start at 0 and are never handed out.</para>
/// <para><b>Metadata.</b> One byte per node, 2 × <c>NextPowerOfTwo(capacity / MinBlockSize)</c> bytes in all, reported by
/// <see cref="BuddyTreeStats.MetadataBytes"/>: 2 MiB for 8 MiB with 8-byte blocks (capacity / 4: the seed's 1.25× in
/// total), 512 KiB for 1 GiB with 4 KiB pages, 32 MiB for 1 TiB with 64 KiB blocks. No other metadata is needed: the
/// allocated node of an offset is the first node on the offset's path with value 0 whose child on the path is not 0.
/// The tree is limited to 2^29 leaves (1 GiB of metadata).</para>
/// <para><b>Cost.</b> Construction fills the tree level by level: linear in the tree size, never in the capacity.
/// Allocate and Free each walk down from the root to the block's node (Free along the offset's path, where the seed
/// climbs from the leaf), then climb back, stopping as soon as an ancestor's value does not change: O(tree height) ≤ 30
/// steps, no GC allocations. The levels below a block's order are never touched, so larger blocks take fewer steps.</para>
/// <para><b>Misuse.</b> <see cref="Free(ulong)"/> checks, before changing anything, that the offset starts a live
/// allocation; an interior offset, a never-allocated or already freed offset, or one out of range throws
/// <see cref="ArgumentException"/> naming it, and the tree is unchanged. (buddy2.c frees the enclosing block of an interior
/// offset without complaint, and its size query reads out of bounds at the root.)</para>
/// <para><b>Thread safety.</b> None: use one thread at a time or lock around it.</para>
/// </remarks>
public sealed partial class BuddyTree
{
    /// <summary>The largest tree: 2^29 leaves, 2^30 bytes of nodes (a byte array's limit is just under 2^31).</summary>
    internal const int MaxTreeOrder = 29;

    // Nodes in heap order: the root at 1, the children of i at 2i and 2i + 1, index 0 unused; the level of order k starts
    // at _leafCount >> k. Value = order + 1 of the largest free block below, 0 = none.
    private readonly byte[] _nodes;
    private readonly ulong _capacity;
    private readonly ulong _usableBytes;
    private readonly int _minShift;
    private readonly int _treeOrder;
    private readonly nuint _leafCount;
    private readonly BuddyPlacement _placement;
    private ulong _allocatedBytes;
    private long _liveBlocks;

    /// <summary>Creates a tree with all of [0, <paramref name="capacity"/>) free.</summary>
    /// <param name="capacity">Bytes of the managed space. Need not be a power of two: the tree covers the next power of two
    /// of <c>capacity / minBlock</c> blocks and never hands out space at or beyond the capacity; a tail shorter than
    /// <paramref name="minBlock"/> is never handed out either.</param>
    /// <param name="minBlock">The smallest block, a power of two; every allocation is a multiple of it. Default 8.</param>
    /// <param name="placement">Which free block serves a request when several could; default <see cref="BuddyPlacement.BestFit"/>.</param>
    /// <exception cref="ArgumentException"><paramref name="minBlock"/> is not a power of two, <paramref name="capacity"/> is
    /// smaller than <paramref name="minBlock"/>, or the tree would need more than 2^29 leaves (raise <paramref name="minBlock"/>).</exception>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="placement"/> is not a defined value.</exception>
    public BuddyTree(ulong capacity, ulong minBlock = 8, BuddyPlacement placement = BuddyPlacement.BestFit)
    {
        if (!BitOperations.IsPow2(minBlock))
        {
            ThrowHelper.ThrowArgument($"The minimum block {minBlock} is not a power of two.", nameof(minBlock));
        }

        if (capacity < minBlock)
        {
            ThrowHelper.ThrowArgument($"The capacity {capacity} is smaller than the minimum block {minBlock}.", nameof(capacity));
        }

        if (!Enum.IsDefined(placement))
        {
            throw new ArgumentOutOfRangeException(nameof(placement), placement, "Unknown placement.");
        }

        _minShift = BitOperations.TrailingZeroCount(minBlock);
        ulong units = capacity >> _minShift;
        int treeOrder = Orders.CeilLog2(units);
        if (treeOrder > MaxTreeOrder)
        {
            ThrowHelper.ThrowArgument(
                $"A capacity of {capacity} bytes in blocks of {minBlock} needs 2^{treeOrder} leaves, more than the 2^{MaxTreeOrder} a tree can hold; use a larger minimum block.",
                nameof(capacity));
        }

        _capacity = capacity;
        _usableBytes = units << _minShift;
        _treeOrder = treeOrder;
        _leafCount = (nuint)1 << treeOrder;
        _placement = placement;
        _nodes = new byte[2 * _leafCount];
        Build(units);
    }

    /// <summary>The capacity given to the constructor.</summary>
    public ulong Capacity => _capacity;

    /// <summary>The smallest block: every allocation is a multiple of it and aligned to at least it.</summary>
    public ulong MinBlockSize => 1UL << _minShift;

    /// <summary>Which free block serves a request when several could.</summary>
    public BuddyPlacement Placement => _placement;

    /// <summary>
    /// Allocates a block of max(next power of two of <paramref name="size"/>, <paramref name="align"/>,
    /// <see cref="MinBlockSize"/>) bytes, aligned to its size.
    /// </summary>
    /// <param name="size">Bytes wanted; 0 gets a unique block of <see cref="MinBlockSize"/>.</param>
    /// <param name="align">Alignment wanted for the offset, a power of two.</param>
    /// <param name="offset">The block's offset; 0 when the call returns <see langword="false"/>.</param>
    /// <returns><see langword="false"/> when no free block is large enough; the tree is then unchanged.</returns>
    /// <exception cref="ArgumentException"><paramref name="align"/> is not a power of two.</exception>
    public bool TryAllocate(ulong size, ulong align, out ulong offset)
    {
        if (!BitOperations.IsPow2(align))
        {
            ThrowHelper.ThrowArgument($"Alignment {align} is not a power of two.", nameof(align));
        }

        int order = Orders.OrderFor(size, align, _minShift);
        ref byte nodes = ref MemoryMarshal.GetArrayDataReference(_nodes);
        if (!TreeNodes.HasFreeBlock(ref nodes, _treeOrder, order))
        {
            offset = 0;
            return false;
        }

        // The placement is chosen once here; each walk is compiled for its rule (TreeNodes.Descend).
        nuint index = _placement switch
        {
            BuddyPlacement.RightFirst => TreeNodes.Descend<TreeNodes.RightFirst>(ref nodes, _treeOrder, order),
            BuddyPlacement.LeftFirst => TreeNodes.Descend<TreeNodes.LeftFirst>(ref nodes, _treeOrder, order),
            _ => TreeNodes.Descend<TreeNodes.BestFit>(ref nodes, _treeOrder, order),
        };

        Unsafe.Add(ref nodes, index) = 0;
        TreeNodes.UpdateAncestors(ref nodes, index, order);
        offset = (ulong)(index - (_leafCount >> order)) << (order + _minShift);
        _allocatedBytes += 1UL << (order + _minShift);
        _liveBlocks++;
        return true;
    }

    /// <summary>Allocates as <see cref="TryAllocate"/> does, throwing when it cannot.</summary>
    /// <param name="size">Bytes wanted; 0 gets a unique block of <see cref="MinBlockSize"/>.</param>
    /// <param name="align">Alignment wanted for the offset, a power of two; default 1.</param>
    /// <returns>The block's offset.</returns>
    /// <exception cref="ArgumentException"><paramref name="align"/> is not a power of two.</exception>
    /// <exception cref="HeapExhaustedException">No free block is large enough; the message names the request, the free
    /// bytes and the largest free block. The tree is unchanged.</exception>
    public ulong Allocate(ulong size, ulong align = 1)
    {
        if (!TryAllocate(size, align, out ulong offset))
        {
            throw new HeapExhaustedException(size, align, _usableBytes - _allocatedBytes, LargestFreeBlock());
        }

        return offset;
    }

    /// <summary>
    /// Frees the allocation starting at <paramref name="offset"/>; no size is needed: the allocated node is found on the
    /// offset's path, as the seed does. The block merges with its buddy for as long as the buddy is wholly free.
    /// </summary>
    /// <param name="offset">An offset returned by <see cref="TryAllocate"/> or <see cref="Allocate"/> and not freed since.</param>
    /// <exception cref="ArgumentException"><paramref name="offset"/> is out of range, inside a block rather than at its start,
    /// or not allocated (never allocated, or already freed). The message names the offset; the tree is unchanged.</exception>
    public void Free(ulong offset)
    {
        int order = FindLiveBlock(offset, out nuint index);
        Release(index, order);
    }

    /// <summary>Frees as <see cref="Free(ulong)"/> does, first checking that <paramref name="size"/> maps to the block's size.</summary>
    /// <param name="offset">An offset returned by an allocation and not freed since.</param>
    /// <param name="size">The size passed to the allocation (any size that maps to the same block size will do).</param>
    /// <exception cref="ArgumentException">As for <see cref="Free(ulong)"/>, or <paramref name="size"/> maps to another block
    /// size (for an allocation whose alignment enlarged the block, use <see cref="Free(ulong, ulong, ulong)"/>). The tree is unchanged.</exception>
    public void Free(ulong offset, ulong size) => Free(offset, size, 1);

    /// <summary>Frees as <see cref="Free(ulong)"/> does, first checking that <paramref name="size"/> and <paramref name="align"/>
    /// map to the block's size.</summary>
    /// <param name="offset">An offset returned by an allocation and not freed since.</param>
    /// <param name="size">The size passed to the allocation.</param>
    /// <param name="align">The alignment passed to the allocation, a power of two.</param>
    /// <exception cref="ArgumentException">As for <see cref="Free(ulong)"/>, <paramref name="align"/> is not a power of two,
    /// or the request maps to another block size than the one at <paramref name="offset"/>. The tree is unchanged.</exception>
    public void Free(ulong offset, ulong size, ulong align)
    {
        if (!BitOperations.IsPow2(align))
        {
            ThrowHelper.ThrowArgument($"Alignment {align} is not a power of two.", nameof(align));
        }

        int order = FindLiveBlock(offset, out nuint index);
        int expected = Orders.OrderFor(size, align, _minShift);
        if (expected != order)
        {
            string mapped = expected > _treeOrder ? "a block larger than the tree" : $"a block of {BlockSize(expected)} bytes";
            ThrowHelper.ThrowArgument(
                $"Cannot free offset {Describe(offset)} with size {size} and alignment {align}: that request maps to {mapped}, but the block there has {BlockSize(order)} bytes.",
                nameof(size));
        }

        Release(index, order);
    }

    /// <summary>The block size of the live allocation starting at <paramref name="offset"/>.</summary>
    /// <param name="offset">An offset returned by an allocation and not freed since.</param>
    /// <returns>The block's size in bytes: a power of two, at least the size requested.</returns>
    /// <exception cref="ArgumentException">As for <see cref="Free(ulong)"/>; nothing changes either way.</exception>
    public ulong SizeOf(ulong offset) => BlockSize(FindLiveBlock(offset, out _));

    /// <summary>A snapshot of the tree's accounting, including the maximal free blocks per order (<c>/proc/buddyinfo</c>).</summary>
    /// <remarks>Costs O(nodes above the free and allocated blocks), at most the tree size; not for hot paths.</remarks>
    public BuddyTreeStats Stats
    {
        get
        {
            var byOrder = new long[_treeOrder + 1];
            TreeNodes.CountFreeBlocks(ref MemoryMarshal.GetArrayDataReference(_nodes), 1, _treeOrder, byOrder);
            return new BuddyTreeStats
            {
                Capacity = _capacity,
                UsableBytes = _usableBytes,
                AllocatedBytes = _allocatedBytes,
                FreeBytes = _usableBytes - _allocatedBytes,
                LargestFreeBlock = LargestFreeBlock(),
                MetadataBytes = (ulong)_nodes.LongLength,
                LiveBlocks = _liveBlocks,
                MinBlockSize = MinBlockSize,
                FreeBlocksByOrder = byOrder,
            };
        }
    }

    /// <summary>Fills the tree level by level: whole nodes below the usable end are free, at most one node per level
    /// straddles it, the rest (already zero) lie beyond it and are never handed out.</summary>
    private void Build(ulong units)
    {
        Span<byte> nodes = _nodes;
        for (int order = 0; order <= _treeOrder; order++)
        {
            int levelStart = (int)(_leafCount >> order);
            int freeNodes = (int)(units >> order);
            nodes.Slice(levelStart, freeNodes).Fill((byte)(order + 1));
            if (order > 0 && freeNodes < levelStart)
            {
                int straddling = levelStart + freeNodes;
                nodes[straddling] = Math.Max(nodes[2 * straddling], nodes[(2 * straddling) + 1]);
            }
        }
    }

    /// <summary>Frees the allocated node <paramref name="index"/> of <paramref name="order"/>.</summary>
    private void Release(nuint index, int order)
    {
        ref byte nodes = ref MemoryMarshal.GetArrayDataReference(_nodes);
        Unsafe.Add(ref nodes, index) = (byte)(order + 1);
        TreeNodes.UpdateAncestors(ref nodes, index, order);
        _allocatedBytes -= BlockSize(order);
        _liveBlocks--;
    }

    /// <summary>
    /// Finds the allocated node whose block starts at <paramref name="offset"/> and returns its order; throws, naming the
    /// offset, when there is none. On the offset's path from the root, the nodes above its allocated node hold values of
    /// at least 1, or 0 when their whole range is used (and then so do both their children); the allocated node holds 0
    /// while its children keep their wholly-free values. So the allocated node is the first 0 on the path whose child on
    /// the path is not 0. The seed finds the same node by climbing from the leaf; walking down instead touches the hot top
    /// of the tree and stops at the allocated node, instead of starting at the cold bottom level.
    /// </summary>
    private int FindLiveBlock(ulong offset, out nuint index)
    {
        if (offset >= _usableBytes)
        {
            ThrowHelper.ThrowArgument($"Offset {Describe(offset)} is not the start of a live allocation: it lies outside the usable space [0, {Describe(_usableBytes)}).", nameof(offset));
        }

        if ((offset & (MinBlockSize - 1)) != 0)
        {
            ThrowHelper.ThrowArgument($"Offset {Describe(offset)} is not the start of a live allocation: it is not a multiple of the minimum block {MinBlockSize}.", nameof(offset));
        }

        ref byte nodes = ref MemoryMarshal.GetArrayDataReference(_nodes);
        ulong unit = offset >> _minShift;
        index = 1;
        int order = _treeOrder;
        while (true)
        {
            if (order == 0)
            {
                if (Unsafe.Add(ref nodes, index) != 0)
                {
                    ThrowHelper.ThrowArgument($"Offset {Describe(offset)} is not the start of a live allocation: no allocation covers it (never allocated, or already freed).", nameof(offset));
                }

                break;
            }

            nuint child = (index << 1) + (nuint)((unit >> (order - 1)) & 1);
            if (Unsafe.Add(ref nodes, index) == 0 && Unsafe.Add(ref nodes, child) != 0)
            {
                break;
            }

            index = child;
            order--;
        }

        ulong start = (ulong)(index - (_leafCount >> order)) << (order + _minShift);
        if (start != offset)
        {
            ThrowHelper.ThrowArgument($"Offset {Describe(offset)} is not the start of a live allocation: it lies inside the block of {BlockSize(order)} bytes at {Describe(start)}.", nameof(offset));
        }

        return order;
    }

    private ulong LargestFreeBlock()
    {
        byte root = _nodes[1];
        return root == 0 ? 0 : BlockSize(root - 1);
    }

    private ulong BlockSize(int order) => 1UL << (order + _minShift);

    private static string Describe(ulong offset) => offset.ToString(CultureInfo.InvariantCulture) + " (" + ThrowHelper.Hex(offset) + ")";
}
