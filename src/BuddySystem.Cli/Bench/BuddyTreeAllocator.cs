namespace BuddySystem.Cli.Bench;

/// <summary>
/// <c>buddy-tree</c>: the seed's segment tree (<see cref="BuddyTree"/>, default minimum block and placement) handing out
/// offsets into one region; a block here is region start + offset, so the replayer can fill and check it.
/// </summary>
internal readonly unsafe struct BuddyTreeAllocator : IBenchAllocator
{
    private readonly BuddyTree _tree;
    private readonly NativeRegion _region;
    private readonly nuint _start;

    private BuddyTreeAllocator(BuddyTree tree, NativeRegion region)
    {
        _tree = tree;
        _region = region;
        _start = region.Address;
    }

    public static bool IsThreadSafe => false;

    public static bool IsArena => true;

    public nuint RegionStart => _start;

    /// <summary>A tree over [0, <paramref name="heapSize"/>) and a region of that size (aligned to it, pages touched) for its offsets.</summary>
    public static BuddyTreeAllocator Create(nuint heapSize) =>
        new(new BuddyTree(heapSize), new NativeRegion(heapSize, heapSize, touchPages: true));

    public nuint Allocate(nuint size, nuint align) => _tree.TryAllocate(size, align, out ulong offset) ? _start + (nuint)offset : 0;

    // The seed's free: no size, the tree climbs from the leaf to the allocated node.
    public void Free(nuint block, nuint size, nuint align) => _tree.Free(block - _start);

    // An offset allocator has no reallocate of its own: allocate, copy, free (the old block stays when it fails).
    public nuint Reallocate(nuint block, nuint size, nuint align, nuint newSize) =>
        OffsetMoves.Reallocate(this, _tree.BlockSizeFor(newSize, align) == _tree.BlockSizeFor(size, align), block, size, align, newSize);

    public nuint BlockSize(nuint block, nuint size, nuint align) => (nuint)_tree.SizeOf(block - _start);

    public void Dispose() => _region.Dispose();
}
