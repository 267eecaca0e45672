namespace BuddySystem;

// The purge: Trim gives the pages of large free blocks back to the operating system (issue 34, "memory goes back").
//
// Which advice. MADV_DONTNEED, not MADV_FREE. After DONTNEED the pages of a private anonymous mapping are gone at once:
// the resident set drops by them before madvise returns, and the next touch maps a fresh zero page. MADV_FREE (Linux 4.5)
// only marks them lazily freeable: they stay resident, and counted in RSS, until the kernel runs short of memory, and a
// page written again before that keeps its old contents. A user who calls Trim wants the memory back now and measurable
// (the "RSS back within 64 MiB"); with MADV_FREE an idle process looks as large as before. The price of DONTNEED
// is a page fault and a zeroed page on the next touch of each page, paid only after an explicit Trim.
//
// What stays resident. A free block's first 16 bytes hold its free-list links (FreeBlock), which the lists read and
// write as long as the block is free, so the page holding them is kept: the purge returns the whole pages from the
// first page boundary after the links to the last one inside the block. Moving the links out of the block would need a
// side allocation per free block and a change of the core's list code for one page per free block of at least the
// threshold (with the 64 KiB default at most 1/16 of the free bytes, and after a full merge one page per region); that
// page is the one the next allocation of the block touches first anyway.
//
// Purged once, purged again. The side table has no spare bit to remember "purged" in: a state byte is free (0x80 | order,
// the order taking the 6 low bits up to 59), allocated (0x40 | order) or cached (0x20 | order), and every engine over the
// core (the slab tier, the concurrent fronts, validation, hardening) compares it whole. So a block still free at the next
// Trim is advised again. That costs one madvise per free block of at least the threshold, which walks page tables that
// are already empty: Trim is explicit and rare, and the free lists of those orders are short.
//
// Which memory. Only regions the heap may zero behind its free blocks: the native regions of Create and those given as a
// NativeRegion. Both come from NativeMemory.AlignedAlloc, that is glibc's memalign. A request of that size is an mmap'd
// chunk (above the mmap threshold) or a chunk of an arena, itself brk or mmap'd private anonymous memory; either way the
// pages are private anonymous memory of the process, and the chunk's own header lies before the region's first byte and
// the next chunk's after its last, outside every page the purge returns, which lies inside one free block. So
// MADV_DONTNEED there only turns free bytes into zeros. Memory added by address may be anything (a file or shared
// mapping, a stack, locked pages, the GC's): it is not purged, and neither is a PinnedArrayRegion, whose pages belong to
// the garbage collector's heap.
public sealed unsafe partial class BuddyHeap
{
    // The page size, for rounding the purged ranges (4 KiB on x86-64, 4, 16 or 64 KiB on arm64).
    private static readonly ulong s_pageSize = (ulong)Environment.SystemPageSize;

    // The ranges of memory this heap may purge (see above), in the order they were added: one entry per native region.
    private readonly List<(ulong Start, ulong End)> _purgeable = [];

    // The bytes the purge advised away, counted over the heap's life (re-purged bytes counted again).
    private ulong _purgedBytes;

    /// <summary>The bytes <see cref="PurgeFreeBlocks"/> returned to the system over the heap's life, a block purged at two
    /// trims counted twice (for tests and diagnostics).</summary>
    internal ulong PurgedBytes => _purgedBytes;

    /// <summary>Records that [<paramref name="start"/>, start + <paramref name="size"/>), native memory of this process that
    /// the heap manages, may have the pages of its free blocks returned by <see cref="PurgeFreeBlocks"/>.</summary>
    internal void MarkPurgeable(void* start, nuint size) => _purgeable.Add(((ulong)start, (ulong)start + size));

    /// <summary>Bytes of the pages that hold the regions' memory and are resident now (<see cref="HeapStats.ResidentBytes"/>):
    /// <c>mincore</c> over each region, 4 096 pages a call; 0 off Linux.</summary>
    private ulong ResidentBytesOfRegions()
    {
        if (!OperatingSystem.IsLinux())
        {
            return 0;
        }

        const int PagesPerCall = 4096;
        byte* vector = stackalloc byte[PagesPerCall];
        ulong page = s_pageSize;
        ulong resident = 0;
        for (int i = 0; i < _regions.Length; i++)
        {
            ulong end = (_regions[i].End + page - 1) & ~(page - 1);
            for (ulong at = _regions[i].Start & ~(page - 1); at < end;)
            {
                ulong pages = Math.Min((end - at) / page, PagesPerCall);
                if (Libc.Mincore((void*)at, (nuint)(pages * page), vector) == 0)
                {
                    for (ulong p = 0; p < pages; p++)
                    {
                        resident += (ulong)(vector[p] & 1) * page;
                    }
                }

                at += pages * page;
            }
        }

        return resident;
    }

    /// <summary>
    /// Returns to the system every whole page of each free buddy-list block of at least
    /// <see cref="BuddyHeapOptions.PurgeThreshold"/> bytes in purgeable memory, but the page holding the block's links, with
    /// <c>madvise(MADV_DONTNEED)</c>; returns the bytes advised. Does nothing when the threshold is 0, the heap checks
    /// writes after free (its free blocks hold poison), or the system is not Linux.
    /// </summary>
    /// <remarks>Costs one system call per such free block. Cached blocks are not purged: <see cref="Trim"/> returns them to
    /// the lists first. A failing madvise (locked pages, say) leaves its pages resident: the purge is advice, never an
    /// error.</remarks>
    internal ulong PurgeFreeBlocks()
    {
        long threshold = Options.PurgeThreshold;
        if (threshold == 0 || _purgeable.Count == 0 || !OperatingSystem.IsLinux()
            || (_hardening != null && _hardening.Options.CheckWriteAfterFree))
        {
            return 0;
        }

        // The first order whose blocks are at least the threshold; the threshold is at most 2^63 - 1, so this is at most MaxOrder.
        int first = Math.Max(0, Orders.CeilLog2((ulong)threshold) - MinShift);
        ulong orders = _nonEmptyOrders & ~((1UL << first) - 1);
        ulong page = s_pageSize;
        ulong advised = 0;
        int hint = 0;
        while (orders != 0)
        {
            int order = BitOperations.TrailingZeroCount(orders);
            orders &= orders - 1;
            ulong size = (ulong)MinBlockSize << order;
            for (FreeBlock* block = _heads[order]; block != null; block = block->Next)
            {
                ulong address = (ulong)block;
                ulong start = (address + (ulong)sizeof(FreeBlock) + page - 1) & ~(page - 1);
                ulong end = (address + size) & ~(page - 1);
                if (end > start && IsPurgeable(address, size, ref hint)
                    && Libc.Madvise((void*)start, (nuint)(end - start), Libc.AdviseDontNeed) == 0)
                {
                    advised += end - start;
                }
            }
        }

        _purgedBytes += advised;
        return advised;
    }

    /// <summary>Whether the block [<paramref name="address"/>, address + <paramref name="size"/>) lies in purgeable memory;
    /// <paramref name="hint"/> is the entry that held the previous block.</summary>
    private bool IsPurgeable(ulong address, ulong size, ref int hint)
    {
        (ulong start, ulong end) = _purgeable[hint];
        if (address >= start && address + size <= end)
        {
            return true;
        }

        for (int i = 0; i < _purgeable.Count; i++)
        {
            (start, end) = _purgeable[i];
            if (address >= start && address + size <= end)
            {
                hint = i;
                return true;
            }
        }

        return false;
    }
}
