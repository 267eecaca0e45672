using BuddySystem.Diagnostics;

namespace BuddySystem;

public sealed unsafe partial class BuddyHeap
{
    /// <summary>The first managed byte of the lowest region; 0 when the heap has no region.</summary>
    internal ulong FirstRegionStart => _regions.Length == 0 ? 0 : _regions[0].Start;

    /// <summary>The first byte after the highest region; 0 when the heap has no region.</summary>
    internal ulong LastRegionEnd => _regions.Length == 0 ? 0 : _regions[^1].End;

    /// <summary>Bytes under management (the regions, without gaps between them).</summary>
    internal ulong ManagedBytes => _totalBytes;

    /// <summary>The heap's own counters, read in O(1) (for fronts that add their threads' counters to them).</summary>
    internal (ulong UserBytes, ulong AllocatedBytes, long LiveBlocks, long Allocations, long FailedAllocations) Counters
        => (_userBytes, _allocatedBytes, _liveBlocks, _allocations, _failedAllocations);

    /// <summary>
    /// Appends every block of every region to <paramref name="blocks"/> in address order, offsets counted from
    /// <paramref name="baseAddress"/>. Reads the side tables only: no list, link or counter is touched.
    /// </summary>
    /// <remarks>O(blocks + granules skipped by nothing): one step per block. For diagnostics, not hot paths.</remarks>
    internal void CollectBlocks(ulong baseAddress, List<HeapBlock> blocks)
    {
        ThrowIfDisposed();
        foreach (Region region in _regions)
        {
            CollectBlocks(in region, region.Start, region.End, baseAddress, blocks);
        }
    }

    private static void CollectBlocks(in Region region, ulong from, ulong to, ulong baseAddress, List<HeapBlock> blocks)
    {
        ulong address = from;
        while (address < to)
        {
            HeapBlock block = ToBlock(region.States[(address - region.Start) >> MinShift], address, region.End, baseAddress);
            blocks.Add(block);
            address += block.Size;
        }
    }

    /// <summary>
    /// Reads one state byte as a block. A state that is empty, unknown, misaligned or runs past the region becomes an
    /// <see cref="BlockState.Unknown"/> granule, so a snapshot taken while something is wrong still shows the rest.
    /// </summary>
    private static HeapBlock ToBlock(byte state, ulong address, ulong regionEnd, ulong baseAddress)
    {
        BlockState kind = ClassifyState(state);
        int order = kind == BlockState.Unknown ? 0 : OrderOfState(state);
        ulong size = (ulong)MinBlockSize << order;
        if (kind == BlockState.Unknown || (address & (size - 1)) != 0 || size > regionEnd - address)
        {
            return new HeapBlock(address - baseAddress, 0, MinBlockSize, BlockState.Unknown);
        }

        return new HeapBlock(address - baseAddress, order, size, kind);
    }

    /// <summary>
    /// Maps a side-table state byte to a <see cref="BlockState"/>; one case per state the heap writes (a new state adds a
    /// case here and in <see cref="OrderOfState"/>). Anything else, including 0, is <see cref="BlockState.Unknown"/>.
    /// </summary>
    internal static BlockState ClassifyState(byte state) => (state & ~OrderMask) switch
    {
        StateFree => BlockState.Free,
        StateAllocated => BlockState.Allocated,
        _ when state != 0 && IsCachedState(state) => BlockState.Cached,
        _ => BlockState.Unknown,
    };
}
