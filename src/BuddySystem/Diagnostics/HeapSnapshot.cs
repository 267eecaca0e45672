namespace BuddySystem.Diagnostics;

/// <summary>
/// Every block of a heap at one moment, with its offset, order and state, plus the figures derived from them: the
/// buddyinfo row and Linux's fragmentation indices. Taken without disturbing the heap.
/// </summary>
/// <remarks>
/// <para>A snapshot reads only the engine's metadata (the side tables of a <see cref="BuddyHeap"/>): it allocates
/// nothing in the heap, touches no free list and changes no counter. It costs one step per block.</para>
/// <para>Offsets count from <see cref="BaseAddress"/>, the start of the heap's lowest region. Bytes between regions
/// belong to no block.</para>
/// <para>Thread safety: a snapshot is immutable. Taking one from a <see cref="BuddyHeap"/> must not overlap a call on
/// that heap; taking one from a <see cref="LockedHeap"/> holds its lock and is safe from any thread.</para>
/// </remarks>
public sealed partial class HeapSnapshot
{
    private readonly HeapBlock[] _blocks;
    private readonly long[] _freeBlocksByOrder;

    /// <summary>Builds a snapshot from blocks in offset order; for engines and tests.</summary>
    /// <param name="blocks">The blocks, sorted by offset, not overlapping.</param>
    /// <param name="minBlockSize">The size of order 0; a power of two.</param>
    /// <param name="orderCount">How many orders the heap can hold (orders 0 to orderCount − 1); at least the highest block order + 1.</param>
    /// <param name="baseAddress">The address of offset 0; 0 for offset allocators.</param>
    /// <exception cref="ArgumentNullException"><paramref name="blocks"/> is null.</exception>
    /// <exception cref="ArgumentException"><paramref name="minBlockSize"/> is not a power of two, or the blocks overlap, are out of order,
    /// or have an order of <paramref name="orderCount"/> or more.</exception>
    public HeapSnapshot(IEnumerable<HeapBlock> blocks, ulong minBlockSize, int orderCount, ulong baseAddress = 0)
    {
        ArgumentNullException.ThrowIfNull(blocks);
        if (minBlockSize == 0 || (minBlockSize & (minBlockSize - 1)) != 0)
        {
            throw new ArgumentException($"The smallest block size {minBlockSize} is not a power of two.", nameof(minBlockSize));
        }

        ArgumentOutOfRangeException.ThrowIfNegative(orderCount);
        _blocks = [.. blocks];
        _freeBlocksByOrder = new long[orderCount];
        MinBlockSize = minBlockSize;
        BaseAddress = baseAddress;
        ulong end = 0;
        foreach (HeapBlock block in _blocks)
        {
            if (block.Offset < end || block.Order < 0 || block.Order >= orderCount)
            {
                throw new ArgumentException($"Block at offset {block.Offset} of order {block.Order} overlaps the previous block or has an order outside 0..{orderCount - 1}.", nameof(blocks));
            }

            end = block.End;
            TotalBytes += block.Size;
            switch (block.State)
            {
                case BlockState.Free:
                    FreeBytes += block.Size;
                    _freeBlocksByOrder[block.Order]++;
                    LargestFreeBlock = Math.Max(LargestFreeBlock, block.Size);
                    break;
                case BlockState.Allocated:
                    AllocatedBytes += block.Size;
                    LiveBlocks++;
                    break;
                case BlockState.Cached:
                    CachedBytes += block.Size;
                    FreeBytes += block.Size;
                    break;
                default:
                    UnknownBytes += block.Size;
                    break;
            }
        }

        SpanBytes = end;
    }

    /// <summary>The slabs of a <see cref="SlabHeap"/> or of a <see cref="ConcurrentHeap"/>'s size-class tier (empty for the
    /// buddy engines): buddy blocks whose objects are among <see cref="Blocks"/>, live ones allocated and free ones cached
    /// (free, but only for their class).</summary>
    public IReadOnlyList<HeapSlab> Slabs { get; private init; } = [];

    /// <summary>The same heap with <paramref name="blocks"/> (the same bytes, cut differently) and <paramref name="slabs"/>.</summary>
    internal HeapSnapshot WithBlocks(List<HeapBlock> blocks, List<HeapSlab> slabs)
        => new(blocks, MinBlockSize, OrderCount, BaseAddress) { Slabs = slabs };

    /// <summary>Every block in offset order.</summary>
    public IReadOnlyList<HeapBlock> Blocks => _blocks;

    /// <summary>The address of offset 0: the first managed byte of the heap's lowest region (0 for an offset allocator;
    /// <see cref="SharedHeap.DataOffset"/>, the file offset of the first block, for a <see cref="SharedHeap"/>).</summary>
    public ulong BaseAddress { get; }

    /// <summary>The size of order 0.</summary>
    public ulong MinBlockSize { get; }

    /// <summary>How many orders the heap can hold: orders 0 to <c>OrderCount − 1</c>; the length of <see cref="FreeBlocksByOrder"/>.</summary>
    public int OrderCount => _freeBlocksByOrder.Length;

    /// <summary>Bytes in blocks: the managed bytes.</summary>
    public ulong TotalBytes { get; }

    /// <summary>From offset 0 to the end of the last block: <see cref="TotalBytes"/> plus any gaps between regions.</summary>
    public ulong SpanBytes { get; }

    /// <summary>Bytes in free blocks, including those parked in lazy caches (as <see cref="HeapStats.FreeBytes"/> counts them).</summary>
    public ulong FreeBytes { get; }

    /// <summary>Bytes in allocated blocks.</summary>
    public ulong AllocatedBytes { get; }

    /// <summary>Bytes in blocks parked in lazy caches: free, but not merged and not on the buddy lists (a part of <see cref="FreeBytes"/>).</summary>
    public ulong CachedBytes { get; }

    /// <summary>Bytes whose state the snapshot could not read (0 for a healthy heap).</summary>
    public ulong UnknownBytes { get; }

    /// <summary>Number of allocated blocks.</summary>
    public long LiveBlocks { get; }

    /// <summary>The largest free block on the buddy lists; 0 when none is free.</summary>
    public ulong LargestFreeBlock { get; }

    /// <summary>Free blocks per order (order 0 first): the heap's row of Linux's <c>/proc/buddyinfo</c>.</summary>
    public IReadOnlyList<long> FreeBlocksByOrder => _freeBlocksByOrder;

    /// <summary>The unusable free index U(j) of this snapshot; see <see cref="Fragmentation.UnusableFreeIndex"/>.</summary>
    /// <param name="order">The request's order j.</param>
    /// <returns>U(j) in [0, 1].</returns>
    public double UnusableFreeIndex(int order) => Fragmentation.UnusableFreeIndex(_freeBlocksByOrder, order);

    /// <summary>The fragmentation index F(j) of this snapshot; see <see cref="Fragmentation.FragmentationIndex"/>.</summary>
    /// <param name="order">The request's order j.</param>
    /// <returns>F(j); −1 when a block of order j is free; 0 when no block is free.</returns>
    public double FragmentationIndex(int order) => Fragmentation.FragmentationIndex(_freeBlocksByOrder, order);

    /// <summary>Takes a snapshot of <paramref name="heap"/>'s blocks. Must not overlap another call on the heap.</summary>
    /// <param name="heap">The heap to read.</param>
    /// <returns>The snapshot; offsets count from the heap's lowest region.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="heap"/> is null.</exception>
    /// <exception cref="ObjectDisposedException">The heap was disposed.</exception>
    public static HeapSnapshot Of(BuddyHeap heap)
    {
        ArgumentNullException.ThrowIfNull(heap);
        var blocks = new List<HeapBlock>();
        ulong baseAddress = heap.FirstRegionStart;
        heap.CollectBlocks(baseAddress, blocks);
        int orderCount = 0;
        foreach (HeapBlock block in blocks)
        {
            orderCount = Math.Max(orderCount, block.Order + 1);
        }

        // Orders up to the whole heap's size count even when no block has them now, so the buddyinfo row has a fixed length.
        ulong managed = heap.ManagedBytes;
        if (managed != 0)
        {
            orderCount = Math.Max(orderCount, Orders.FloorLog2(managed) - BuddyHeap.MinShift + 1);
        }

        return new HeapSnapshot(blocks, BuddyHeap.MinBlockSize, orderCount, baseAddress);
    }

    /// <summary>
    /// Takes a snapshot of a slab heap: kmalloc on the buddy allocator in one picture. Free blocks are the buddy engine's;
    /// each slab is listed in <see cref="Slabs"/> and appears in <see cref="Blocks"/> as its objects (live ones
    /// <see cref="BlockState.Allocated"/>, free ones and the slab's unused tail <see cref="BlockState.Cached"/>, each with
    /// the slab's order); a large block is one allocated block of its kept length. The byte totals equal the heap's
    /// <see cref="SlabHeap.Stats"/>. Must not overlap another call on the heap.
    /// </summary>
    /// <param name="heap">The heap to read.</param>
    /// <returns>The snapshot; offsets count from the heap's lowest region.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="heap"/> is null.</exception>
    /// <exception cref="ObjectDisposedException">The heap was disposed.</exception>
    public static HeapSnapshot Of(SlabHeap heap)
    {
        ArgumentNullException.ThrowIfNull(heap);
        var blocks = new List<HeapBlock>();
        var slabs = new List<HeapSlab>();
        ulong baseAddress = heap.Buddy.FirstRegionStart;
        heap.CollectBlocks(baseAddress, blocks, slabs);
        int orderCount = 0;
        foreach (HeapBlock block in blocks)
        {
            orderCount = Math.Max(orderCount, block.Order + 1);
        }

        ulong managed = heap.Buddy.ManagedBytes;
        if (managed != 0)
        {
            orderCount = Math.Max(orderCount, Orders.FloorLog2(managed) - BuddyHeap.MinShift + 1);
        }

        return new HeapSnapshot(blocks, BuddyHeap.MinBlockSize, orderCount, baseAddress) { Slabs = slabs };
    }

    /// <summary>Takes a snapshot of <paramref name="heap"/>'s engine under its lock; safe from any thread.</summary>
    /// <param name="heap">The heap to read.</param>
    /// <returns>The snapshot.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="heap"/> is null.</exception>
    /// <exception cref="ObjectDisposedException">The heap was disposed.</exception>
    public static HeapSnapshot Of(LockedHeap heap)
    {
        ArgumentNullException.ThrowIfNull(heap);
        return heap.WithHeap(Of);
    }

    /// <summary>
    /// Takes a snapshot of <paramref name="heap"/>'s core under its lock; blocks parked in threads' caches show as
    /// <see cref="BlockState.Cached"/>, and each slab of the size-class tier as its objects (live ones
    /// <see cref="BlockState.Allocated"/>, free ones <see cref="BlockState.Cached"/>), listed in <see cref="Slabs"/>. Exact
    /// when no other thread is using the heap; otherwise a block that a thread is
    /// changing on the lock-free path at that moment may show as <see cref="BlockState.Unknown"/>.
    /// </summary>
    /// <param name="heap">The heap to read.</param>
    /// <returns>The snapshot.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="heap"/> is null.</exception>
    /// <exception cref="ObjectDisposedException">The heap was disposed.</exception>
    public static HeapSnapshot Of(ConcurrentHeap heap)
    {
        ArgumentNullException.ThrowIfNull(heap);
        return heap.Snapshot();
    }

    /// <summary>Takes a snapshot of a shared heap's blocks under its file lock; safe from any thread of any process. A heap
    /// left in the middle of an operation by a killed process is recovered first, as by any call.</summary>
    /// <param name="heap">The heap to read.</param>
    /// <returns>The snapshot: offsets count from the first block, so a block's heap offset is its snapshot offset plus
    /// <see cref="BaseAddress"/> (= <see cref="SharedHeap.DataOffset"/>); free blocks are the buddy system's maximal ones;
    /// one order per tree level.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="heap"/> is null.</exception>
    /// <exception cref="ObjectDisposedException">The heap was disposed.</exception>
    public static HeapSnapshot Of(SharedHeap heap)
    {
        ArgumentNullException.ThrowIfNull(heap);
        ulong dataOffset = heap.DataOffset;
        ulong minBlock = heap.MinBlockSize;
        var blocks = new List<HeapBlock>();
        foreach ((ulong offset, int order, bool allocated) in heap.Blocks())
        {
            blocks.Add(new HeapBlock(offset - dataOffset, order, minBlock << order, allocated ? BlockState.Allocated : BlockState.Free));
        }

        return new HeapSnapshot(blocks, minBlock, heap.OrderCount, dataOffset);
    }

    /// <summary>Takes a snapshot of an offset allocator's blocks; offsets are the tree's own. Must not overlap a call on the tree.</summary>
    /// <param name="tree">The tree to read.</param>
    /// <returns>The snapshot, with <see cref="BaseAddress"/> 0 and one order per tree level.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="tree"/> is null.</exception>
    public static HeapSnapshot Of(BuddyTree tree)
    {
        ArgumentNullException.ThrowIfNull(tree);
        var blocks = new List<HeapBlock>();
        tree.CollectBlocks(blocks);
        return new HeapSnapshot(blocks, tree.MinBlockSize, tree.OrderCount);
    }
}
