using BuddySystem.Internals;

namespace BuddySystem;

public sealed unsafe partial class SlabHeap
{
    /// <summary>
    /// Checks every invariant and throws <see cref="HeapCorruptionException"/> on the first violation: the buddy engine
    /// validates; every slab's pages point to it; its free list holds exactly its objects whose allocation bit is clear;
    /// its used count matches its set bits; each class's list holds exactly its non-full slabs, with the empty count
    /// right; the byte counts add up.
    /// </summary>
    /// <remarks>Costs O(managed bytes / 16). For tests and diagnostics, not for hot paths.</remarks>
    /// <exception cref="HeapCorruptionException">An invariant does not hold; the message says which and where.</exception>
    /// <exception cref="ObjectDisposedException">The heap was disposed.</exception>
    public void Validate()
    {
        ThrowIfDisposed();
        _buddy.Validate();
        ulong allocated = 0;
        ulong slabBytes = 0;
        ulong objectBytes = 0;
        long live = 0;
        long slabs = 0;
        var listed = new long[SizeClasses.Count];
        var empty = new long[SizeClasses.Count];
        foreach (SlabRegion region in _regions)
        {
            for (ulong page = 0; page < region.PageCount;)
            {
                nint entry = region.Pages[page];
                if (entry == 0)
                {
                    page++;
                    continue;
                }

                ulong address = (region.FirstPage + page) << PageShift;
                if ((entry & 1) != 0)
                {
                    allocated += (ulong)entry >> 1;
                    live++;
                    page++;
                    continue;
                }

                var slab = (Slab*)entry;
                ulong size = 1UL << slab->Shift;
                ulong pages = size >> PageShift;
                if ((ulong)slab->Start != address || page + pages > region.PageCount)
                {
                    ThrowHelper.ThrowCorruption($"page {ThrowHelper.Hex(address)} points to slab {ThrowHelper.Hex((ulong)slab->Start)}, which does not start there.");
                }

                for (ulong inner = 1; inner < pages; inner++)
                {
                    if (region.Pages[page + inner] != entry)
                    {
                        ThrowHelper.ThrowCorruption($"page {ThrowHelper.Hex(address + (inner << PageShift))} lies in slab {ThrowHelper.Hex(address)} but does not point to it.");
                    }
                }

                long used = 0;
                for (int i = 0; i < slab->Capacity; i++)
                {
                    ulong item = address + ((ulong)i * slab->ObjectSize);
                    ulong bit = (item - region.Start) >> GranuleShift;
                    if ((region.Bits[bit >> 6] & (1UL << (int)(bit & 63))) != 0)
                    {
                        used++;
                    }
                }

                long free = 0;
                for (FreeObject* item = slab->Free; item != null; item = item->Next)
                {
                    ulong offset = (ulong)item - address;
                    ulong bit = ((ulong)item - region.Start) >> GranuleShift;
                    if (offset >= size || offset % slab->ObjectSize != 0 || (region.Bits[bit >> 6] & (1UL << (int)(bit & 63))) != 0 || ++free > slab->Capacity)
                    {
                        ThrowHelper.ThrowCorruption($"slab {ThrowHelper.Hex(address)} has a bad free-list entry {ThrowHelper.Hex((ulong)item)}.");
                    }
                }

                if (used != slab->Used || used + free != slab->Capacity)
                {
                    ThrowHelper.ThrowCorruption($"slab {ThrowHelper.Hex(address)} counts {slab->Used} used objects, its bitmap {used}, its free list {free}, of {slab->Capacity}.");
                }

                allocated += (ulong)used * slab->ObjectSize;
                objectBytes += (ulong)used * slab->ObjectSize;
                live += used;
                slabBytes += size;
                slabs++;
                if (free != 0)
                {
                    listed[slab->ClassIndex]++;
                }

                if (used == 0)
                {
                    empty[slab->ClassIndex]++;
                }

                page += pages;
            }
        }

        for (int index = 0; index < SizeClasses.Count; index++)
        {
            long count = 0;
            for (Slab* slab = _classes[index].Head; slab != null; slab = slab->Next)
            {
                if (slab->ClassIndex != index || slab->Free == null || (slab->Next != null && slab->Next->Prev != slab) || ++count > listed[index])
                {
                    ThrowHelper.ThrowCorruption($"the slab list of class {SizeClasses.SizeOf(index)} holds a wrong or full slab {ThrowHelper.Hex((ulong)slab->Start)}.");
                }
            }

            if (count != listed[index] || empty[index] != _classes[index].EmptySlabs || empty[index] > EmptySlabsKept)
            {
                ThrowHelper.ThrowCorruption($"class {SizeClasses.SizeOf(index)} lists {count} of {listed[index]} slabs with free objects and counts {_classes[index].EmptySlabs} empty of {empty[index]}.");
            }
        }

        if (allocated != _allocatedBytes || live != _liveBlocks || slabBytes != _slabBytes || objectBytes != _slabObjectBytes || slabs != _slabs
            || _buddy.Stats.AllocatedBytes != slabBytes + (allocated - objectBytes))
        {
            ThrowHelper.ThrowCorruption($"the counts disagree: {allocated} allocated bytes in {live} blocks and {slabBytes} slab bytes found, {_allocatedBytes}, {_liveBlocks} and {_slabBytes} counted.");
        }
    }
}
