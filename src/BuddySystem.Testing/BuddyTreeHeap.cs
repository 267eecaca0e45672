namespace BuddySystem.Testing;

/// <summary>
/// Drives the offset engine <see cref="BuddyTree"/> through the pointer contract, so the soak, fuzz and model workloads
/// cover it too: the tree manages [0, capacity) of a native region aligned to its capacity, and a block's address is the
/// region's start plus its offset (so addresses are aligned to their block size exactly as offsets are).
/// </summary>
/// <remarks>The tree does not count requested bytes; this adapter does, so <see cref="Stats"/> can report
/// <see cref="HeapStats.UserBytes"/>. Misuse messages name the offset (address − region start), as the tree does.</remarks>
internal sealed unsafe class BuddyTreeHeap : IAllocator, IHeapStatsSource, IDisposable
{
    private readonly NativeRegion _region;
    private readonly ulong _base;
    private ulong _userBytes;
    private long _failedAllocations;

    internal BuddyTreeHeap(nuint capacity)
    {
        _region = new NativeRegion(capacity, capacity);
        _base = (ulong)_region.Pointer;
        Tree = new BuddyTree(capacity, BuddyHeap.MinBlockSize);
    }

    internal BuddyTree Tree { get; }

    /// <summary>The offset of <paramref name="address"/> in the tree (wraps around for addresses below the region).</summary>
    internal ulong OffsetOf(void* address) => (ulong)address - _base;

    public void* Allocate(Layout layout)
    {
        if (!Tree.TryAllocate(layout.Size, layout.Align, out ulong offset))
        {
            _failedAllocations++;
            return null;
        }

        _userBytes += layout.Size;
        return (void*)(_base + offset);
    }

    public void Deallocate(void* ptr, Layout layout)
    {
        Tree.Free(OffsetOf(ptr), layout.Size, layout.Align);
        _userBytes -= layout.Size;
    }

    public HeapStats Stats
    {
        get
        {
            BuddyTreeStats tree = Tree.Stats;
            return new HeapStats
            {
                UserBytes = _userBytes,
                AllocatedBytes = tree.AllocatedBytes,
                TotalBytes = tree.UsableBytes,
                FreeBytes = tree.FreeBytes,
                MetadataBytes = tree.MetadataBytes,
                LargestFreeBlock = tree.LargestFreeBlock,
                LiveBlocks = tree.LiveBlocks,
                FailedAllocations = _failedAllocations,
                MinBlockSize = tree.MinBlockSize,
                FreeBlocksByOrder = tree.FreeBlocksByOrder,
            };
        }
    }

    public void Dispose() => _region.Dispose();
}
