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

    /// <summary>
    /// Appends the blocks in [<paramref name="from"/>, <paramref name="to"/>) to <paramref name="blocks"/>;
    /// <paramref name="from"/> must start a block (any range aligned to a block that covers it does).
    /// </summary>
    internal void CollectBlocks(ulong from, ulong to, ulong baseAddress, List<HeapBlock> blocks)
    {
        ThrowIfDisposed();
        int index = FindRegion(from);
        if (index >= 0)
        {
            Region region = _regions[index];
            CollectBlocks(in region, from, Math.Min(to, region.End), baseAddress, blocks);
        }
    }

    /// <summary>The block that holds <paramref name="address"/>; false when the address lies outside every region.</summary>
    /// <remarks>
    /// O(orders): the holding block starts at the address rounded down to its own size, and every candidate below that
    /// order lies inside the block, where the side table is 0; so the first candidate with a state is the block.
    /// </remarks>
    internal bool TryFindBlock(ulong address, ulong baseAddress, out HeapBlock block)
    {
        ThrowIfDisposed();
        int index = FindRegion(address);
        if (index >= 0)
        {
            Region region = _regions[index];
            for (int order = 0; order <= MaxOrder; order++)
            {
                ulong start = address & ~(((ulong)MinBlockSize << order) - 1);
                if (start < region.Start)
                {
                    break;
                }

                byte state = region.States[(start - region.Start) >> MinShift];
                if (state != 0)
                {
                    block = ToBlock(state, start, region.End, baseAddress);
                    return start + block.Size > address;
                }
            }
        }

        block = default;
        return false;
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
        int order = OrderOfState(state);
        ulong size = (ulong)MinBlockSize << order;
        if (kind == BlockState.Unknown || (address & (size - 1)) != 0 || size > regionEnd - address)
        {
            return new HeapBlock(address - baseAddress, 0, MinBlockSize, BlockState.Unknown);
        }

        return new HeapBlock(address - baseAddress, order, size, kind);
    }

    /// <summary>Maps a side-table state byte (without its order bits) to a <see cref="BlockState"/>; one case per state the heap writes.</summary>
    internal static BlockState ClassifyState(byte state) => (state & ~OrderMask) switch
    {
        StateFree => BlockState.Free,
        StateAllocated => BlockState.Allocated,
        _ when IsCachedState(state) => BlockState.Cached,
        _ => BlockState.Unknown,
    };
}
