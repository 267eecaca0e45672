using BuddySystem.Diagnostics;
using BuddySystem.Internals;

namespace BuddySystem;

public sealed unsafe partial class SlabHeap
{
    /// <summary>
    /// Appends every block in address order, for <see cref="HeapSnapshot.Of(SlabHeap)"/>: the buddy engine's free blocks as
    /// they are; each slab as its objects (live ones <see cref="BlockState.Allocated"/>, free ones and the slab's unused
    /// tail <see cref="BlockState.Cached"/>: free, but only for its class), every piece with the slab's order; each large
    /// block as one allocated block of its kept length with the order of the buddy block it was cut from.
    /// </summary>
    internal void CollectBlocks(ulong baseAddress, List<HeapBlock> blocks, List<HeapSlab> slabs)
    {
        ThrowIfDisposed();
        var buddyBlocks = new List<HeapBlock>();
        _buddy.CollectBlocks(baseAddress, buddyBlocks);
        ulong skipUntil = 0;
        foreach (HeapBlock block in buddyBlocks)
        {
            ulong address = block.Offset + baseAddress;
            if (address < skipUntil)
            {
                continue; // a later piece of a large block already drawn whole
            }

            int regionIndex = block.State == BlockState.Allocated ? Regions.Find(_regions, address) : -1;
            nint entry = regionIndex < 0 ? 0 : _regions[regionIndex].Pages[(address >> PageShift) - _regions[regionIndex].FirstPage];
            if (entry == 0)
            {
                blocks.Add(block);
            }
            else if ((entry & 1) != 0)
            {
                ulong length = (ulong)entry >> 1;
                blocks.Add(new HeapBlock(block.Offset, Orders.CeilLog2(length) - GranuleShift, length, BlockState.Allocated));
                skipUntil = address + length;
            }
            else
            {
                var slab = (Slab*)entry;
                int live = 0;
                for (int i = 0; i < slab->Capacity; i++)
                {
                    ulong item = address + ((ulong)i * slab->ObjectSize);
                    ulong bit = (item - slab->RegionStart) >> GranuleShift;
                    bool allocated = (slab->Bits[bit >> 6] & (1UL << (int)(bit & 63))) != 0;
                    live += allocated ? 1 : 0;
                    blocks.Add(new HeapBlock(item - baseAddress, block.Order, slab->ObjectSize, allocated ? BlockState.Allocated : BlockState.Cached));
                }

                ulong used = (ulong)slab->Capacity * slab->ObjectSize;
                if (used < block.Size)
                {
                    blocks.Add(new HeapBlock(block.Offset + used, block.Order, block.Size - used, BlockState.Cached));
                }

                slabs.Add(new HeapSlab(block.Offset, block.Size, slab->ObjectSize, slab->Capacity, live));
            }
        }
    }
}
