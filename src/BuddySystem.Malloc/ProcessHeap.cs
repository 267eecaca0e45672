using System.Globalization;
using System.Numerics;
using BuddySystem.Diagnostics;
using BuddySystem.Internals;

namespace BuddySystem.Malloc;

/// <summary>
/// The process's heap behind <c>malloc</c>: the default <see cref="ConcurrentHeap"/> (size-class slabs per thread over the
/// buddy core) over one large reserved range that grows by regions and gives the pages of large freed blocks back to the
/// OS. Every allocation decision is made here; the C loader routes calls and keeps per-thread caches of class objects.
/// </summary>
/// <remarks>
/// <para><b>Growth.</b> At start one range of <see cref="DefaultReserve"/> bytes (or <c>BUDDY_MALLOC_LIMIT</c> rounded up to
/// a power of two) is reserved with <c>MAP_NORESERVE</c>, aligned to its size. Regions are added from its start, doubling:
/// [0, F), [F, 2F), [2F, 4F), ... (F = <see cref="FirstRegion"/>), so region k is aligned to its size and holds one block
/// of its size; an allocation that fails adds regions until one can hold its block, up to the limit.</para>
/// <para><b>Shrinking.</b> A freed block of at least <see cref="DecommitBlock"/> bytes has its pages dropped
/// (<c>madvise(MADV_DONTNEED)</c>) before the heap takes it back, so resident memory falls when a program frees large
/// blocks. Small blocks that merge into large free ones keep their pages.</para>
/// </remarks>
internal static unsafe class ProcessHeap
{
    /// <summary>The range reserved when no limit is set: 64 GiB of address space (no memory until touched).</summary>
    internal const ulong DefaultReserve = 64UL << 30;

    /// <summary>The first region; later ones double the heap.</summary>
    internal const ulong FirstRegion = 64UL << 20;

    /// <summary>Freed blocks of this size or more have their pages returned to the OS (glibc's default mmap threshold).</summary>
    internal const nuint DecommitBlock = 128 * 1024;

    /// <summary>The largest request served: larger ones fail with ENOMEM (as glibc's PTRDIFF_MAX bound).</summary>
    internal static readonly nuint MaxRequest = unchecked((nuint)(1UL << 62));

    private static readonly Lock s_growLock = new();
    private static ConcurrentHeap s_heap = null!;
    private static ulong s_base;
    private static ulong s_end;
    private static ulong s_grown;
    private static LoaderShared* s_shared;
    private static BootArena* s_arena;

    /// <summary>What the C loader reads; valid after <see cref="Initialize"/>.</summary>
    internal static LoaderShared* Shared => s_shared;

    /// <summary>The heap; valid after <see cref="Initialize"/>.</summary>
    internal static ConcurrentHeap Heap => s_heap;

    /// <summary>Reserves the range, reads the limit and adds the first region.</summary>
    /// <param name="arena">The loader's start-up arena, whose blocks this heap accounts for from now on (null: none).</param>
    /// <param name="start">First byte of the reserved range (every block of the heap lies in [start, end)).</param>
    /// <param name="end">End of the reserved range.</param>
    /// <returns>False when the range could not be reserved: the loader then serves everything from glibc.</returns>
    internal static bool Initialize(BootArena* arena, out ulong start, out ulong end)
    {
        start = end = 0;
        s_arena = arena;
        ulong limit = ParseSize(Libc.Environment("BUDDY_MALLOC_LIMIT"));
        ulong reserve = limit == 0 ? DefaultReserve : BitOperations.RoundUpToPowerOf2(Math.Max(limit, FirstRegion));
        // Twice the size, then the unaligned ends unmapped: the range is aligned to its size, so its blocks are too.
        byte* raw = (byte*)Internals.Libc.Mmap(null, (nuint)(2 * reserve), Internals.Libc.ProtReadWrite,
            Internals.Libc.MapPrivate | Internals.Libc.MapAnonymous | Internals.Libc.MapNoReserve, -1, 0);
        if (raw == (byte*)-1)
        {
            return false;
        }

        ulong aligned = ((ulong)raw + reserve - 1) & ~(reserve - 1);
        if (aligned > (ulong)raw)
        {
            Internals.Libc.Munmap(raw, (nuint)(aligned - (ulong)raw));
        }

        ulong tail = (ulong)raw + 2 * reserve - (aligned + reserve);
        if (tail != 0)
        {
            Internals.Libc.Munmap((void*)(aligned + reserve), (nuint)tail);
        }

        s_base = aligned;
        s_grown = aligned;
        s_end = aligned + (limit == 0 ? reserve : limit);
        s_shared = (LoaderShared*)System.Runtime.InteropServices.NativeMemory.AllocZeroed((nuint)sizeof(LoaderShared));
        s_shared->ReserveStart = aligned;
        s_shared->ReserveEnd = aligned + reserve;
        s_shared->MinShift = BuddyHeap.MinShift;
        s_shared->PageShift = SlabTier.PageShift;
        s_shared->StateAllocated = BuddyHeap.StateAllocated;
        s_shared->OrderMask = BuddyHeap.OrderMask;
        s_shared->OutsideCached = SlabTier.OutsideCachedBit;
        s_shared->SlabOwnerOffset = SlabTier.SlabOwnerOffset;
        s_shared->SlabThreadFreeOffset = SlabTier.SlabThreadFreeOffset;
        s_shared->SlabFullOffset = SlabTier.SlabFullOffset;
        s_shared->ClassCount = SizeClasses.Count;
        s_shared->ClassMaxSize = SizeClasses.MaxSize;
        for (int index = 0; index < SizeClasses.Count; index++)
        {
            s_shared->ClassSizes[index] = SizeClasses.SizeOf(index);
        }

        for (int granules = 0; granules <= SizeClasses.MaxSize >> BuddyHeap.MinShift; granules++)
        {
            s_shared->ClassOfGranules[granules] = (byte)SizeClasses.IndexOf((nuint)granules << BuddyHeap.MinShift, 1);
        }

        s_heap = new ConcurrentHeap(BuddyHeapOptions.ConcurrentDefault);
        if (!Grow(s_grown, BuddyHeap.MinBlockSize))
        {
            return false;
        }

        start = aligned;
        end = aligned + reserve;
        return true;
    }

    /// <summary>malloc and the aligned variants: a block of at least <paramref name="size"/> bytes aligned to <paramref name="align"/>.</summary>
    /// <returns>Null when the heap cannot grow enough (the caller sets ENOMEM).</returns>
    internal static void* Allocate(nuint size, nuint align)
    {
        if (size > MaxRequest || align > MaxRequest)
        {
            return null;
        }

        var layout = new Layout(size, align);
        ulong grown = Volatile.Read(ref s_grown);
        void* block = s_heap.Allocate(layout);
        while (block == null)
        {
            if (!Grow(grown, (ulong)BuddyHeap.MinBlockSize << BuddySystem.Internals.Orders.OrderFor(size, align, 4)))
            {
                return null;
            }

            grown = Volatile.Read(ref s_grown);
            block = s_heap.Allocate(layout);
        }

        return block;
    }

    /// <summary>free: misuse throws (the caller reports and aborts) before anything changes.</summary>
    internal static void Free(void* block)
    {
        nuint size = s_heap.UsableSize(block);
        if (size >= DecommitBlock)
        {
            Libc.Madvise(block, size, Libc.MadvDontNeed);
        }

        s_heap.Deallocate(block, new Layout(size, 1));
    }

    /// <summary>realloc of a block of this heap (not null): in place while the new size fits and uses more than half the block.</summary>
    internal static void* Reallocate(void* block, nuint size)
    {
        nuint usable = s_heap.UsableSize(block);
        if (size == 0)
        {
            Free(block);
            return null;
        }

        if (size <= usable && (size > usable / 2 || usable == BuddyHeap.MinBlockSize))
        {
            return block;
        }

        void* moved = Allocate(size, 1);
        if (moved == null)
        {
            // A shrink that cannot move keeps the block (still large enough); a growth fails, the old block stays live.
            return size <= usable ? block : null;
        }

        Buffer.MemoryCopy(block, moved, size, Math.Min(size, usable));
        Free(block);
        return moved;
    }

    /// <summary>Adds regions until one holds a block of <paramref name="blockSize"/> bytes, unless another thread grew the
    /// heap since <paramref name="observed"/>; false at the limit.</summary>
    private static bool Grow(ulong observed, ulong blockSize)
    {
        lock (s_growLock)
        {
            if (s_grown != observed)
            {
                return true;
            }

            bool added = false;
            while (s_grown < s_end)
            {
                ulong regionStart = s_grown;
                ulong used = regionStart - s_base;
                ulong end = Math.Min(regionStart + (used == 0 ? FirstRegion : used), s_end);
                s_heap.AddRegion((void*)regionStart, (nuint)(end - regionStart));
                Publish(regionStart, end);
                Volatile.Write(ref s_grown, end);
                added = true;
                if (end - regionStart >= blockSize)
                {
                    return true;
                }
            }

            // Regions too small for the block were added (a retry then fails and comes back here at the limit).
            return added;
        }
    }

    /// <summary>Gives the loader a new region's side tables (a region past <see cref="LoaderShared.MaxRegions"/> is served
    /// by the managed path only).</summary>
    private static void Publish(ulong start, ulong end)
    {
        int index = s_shared->RegionCount;
        if (index >= LoaderShared.MaxRegions)
        {
            return;
        }

        s_shared->RegionStart[index] = start;
        s_shared->RegionEnd[index] = end;
        s_shared->RegionStates[index] = (ulong)s_heap.StateSlotOf((void*)start);
        if (!s_heap.TryGetObjectMetadata((void*)start, out byte* objects, out byte* marks, out nint* pages))
        {
            throw new InvalidOperationException($"the size-class tier has no region at {start:x}");
        }

        s_shared->RegionObjects[index] = (ulong)objects;
        s_shared->RegionPages[index] = (ulong)pages;
        s_shared->RegionMarks[index] = (ulong)marks;
        Volatile.Write(ref s_shared->RegionCount, index + 1);
    }

    /// <summary>The loader's free from another thread made a full slab's thread-free list non-empty: see
    /// <see cref="ConcurrentHeap.ReviveFullSlab"/>.</summary>
    internal static void ReviveSlab(void* slab) => s_heap.ReviveFullSlab(slab);

    /// <summary>Sets the starting bounds of a thread's loader caches, one per size class: each holds at most
    /// <see cref="LoaderShared.CacheBytesFirst"/> bytes (4 to 64 objects) until it has refilled; a refill takes half of
    /// the bound.</summary>
    /// Returns the id the thread's slabs name as their owner: the caches take only objects of those slabs.
    internal static nint StartThreadCaches(BuddyHeap.OrderCache* caches)
    {
        for (int index = 0; index < SizeClasses.Count; index++)
        {
            caches[index].Initialize(Math.Clamp(LoaderShared.CacheBytesFirst / (int)SizeClasses.SizeOf(index), 4, 64));
        }

        return s_heap.CurrentSlabOwnerId();
    }

    /// <summary>Refills an empty loader cache of class <paramref name="index"/>, growing the heap if needed; false at the
    /// limit (ENOMEM). Each refill doubles the cache's bound, up to <see cref="LoaderShared.CacheBytesMost"/> bytes (8 to
    /// 512 objects): a class a thread uses heavily gets a large cache and one it touches a little keeps a small one, so
    /// the bytes held in the caches follow the program's use (tcmalloc's "slow start" of its free lists).</summary>
    internal static bool Refill(int index, BuddyHeap.OrderCache* cache)
    {
        int most = Math.Clamp(LoaderShared.CacheBytesMost / (int)SizeClasses.SizeOf(index), 8, 512);
        cache->Capacity = Math.Min(most, Math.Max(cache->Capacity, 4) * 2);
        while (true)
        {
            ulong grown = Volatile.Read(ref s_grown);
            if (s_heap.RefillClassCache(cache, index, Math.Max(1, cache->Capacity >> 1)))
            {
                return true;
            }

            if (!Grow(grown, (ulong)1 << SizeClasses.MaxSlabShift))
            {
                return false;
            }
        }
    }

    /// <summary>Frees half of a full loader cache (misuse found on its list throws).</summary>
    internal static void Flush(int index, BuddyHeap.OrderCache* cache) => s_heap.FlushClassCache(cache, index, cache->Capacity >> 1);

    /// <summary>Holds every lock of the heap across <c>fork</c> (growth first, then the heap's), so neither copy sees a change half done.</summary>
    internal static void ForkPrepare()
    {
        s_growLock.Enter();
        s_heap.EnterForFork();
    }

    /// <summary>Releases what <see cref="ForkPrepare"/> took, in the parent and in the child.</summary>
    internal static void ForkDone()
    {
        s_heap.ExitAfterFork();
        s_growLock.Exit();
    }

    /// <summary>The variable naming the file for the heap's snapshot at exit; <c>%p</c> in it becomes the process id, so that
    /// the children of a program (which inherit it) write files of their own.</summary>
    internal const string MapVariable = "BUDDY_MALLOC_MAP";

    /// <summary>Writes the heap's blocks (<see cref="HeapSnapshot.Write"/>) to <paramref name="pattern"/>, <c>%p</c> replaced
    /// by the process id; through a temporary file and a rename, so a reader never sees half a snapshot.</summary>
    internal static void WriteMap(string pattern)
    {
        string path = pattern.Replace("%p", Environment.ProcessId.ToString(CultureInfo.InvariantCulture), StringComparison.Ordinal);
        string temporary = path + ".tmp";
        using (var writer = new StreamWriter(temporary, append: false, new System.Text.UTF8Encoding(false), 1 << 16))
        {
            HeapSnapshot.Of(s_heap).Write(writer);
        }

        File.Move(temporary, path, overwrite: true);
    }

    /// <summary>The <c>--stats</c> report: heap bytes, RSS, buddyinfo and the fragmentation indices.</summary>
    internal static string Report()
    {
        HeapStats stats = s_heap.Stats;
        var text = new System.Text.StringBuilder();
        CultureInfo inv = CultureInfo.InvariantCulture;
        // Objects in the loader's caches count as allocated here: to the engine they are live until a cache flushes them.
        text.Append(inv, $"buddymalloc: pid {Environment.ProcessId} ({ProgramName()})\n");
        if (s_arena != null && s_arena->Start != 0)
        {
            text.Append(inv, $"buddymalloc: start-up arena {s_arena->Size} bytes: {Volatile.Read(ref s_arena->LiveBlocks)} blocks live ({Volatile.Read(ref s_arena->LiveBytes)} bytes), {Volatile.Read(ref s_arena->Allocations)} allocations before the runtime started\n");
        }

        text.Append(inv, $"buddymalloc: heap {s_grown - s_base} bytes in regions (limit {s_end - s_base}), allocated {stats.AllocatedBytes} bytes (with the loader's caches) in {stats.LiveBlocks} blocks, cached {stats.CachedBytes}, {stats.Allocations} allocations in the engine (the loader's caches serve more), {stats.FailedAllocations} failed\n");
        text.Append(inv, $"buddymalloc: rss {ReadStatus("VmRSS")} peak rss {ReadStatus("VmHWM")}\n");
        text.Append("buddymalloc: buddyinfo");
        foreach (long count in stats.FreeBlocksByOrder)
        {
            text.Append(inv, $" {count}");
        }

        text.Append("\nbuddymalloc: U(j)");
        for (int order = 0; order < stats.FreeBlocksByOrder.Count; order++)
        {
            text.Append(inv, $" {Fragmentation.UnusableFreeIndex(stats.FreeBlocksByOrder, order):0.00}");
        }

        text.Append("\nbuddymalloc: F(j)");
        for (int order = 0; order < stats.FreeBlocksByOrder.Count; order++)
        {
            text.Append(inv, $" {Fragmentation.FragmentationIndex(stats.FreeBlocksByOrder, order):0.00}");
        }

        text.Append('\n');
        return text.ToString();
    }

    /// <summary>The program's command line from <c>/proc/self/cmdline</c> (arguments joined by spaces, at most 200
    /// characters), so each report of a traced command's children says whose it is.</summary>
    private static string ProgramName()
    {
        try
        {
            string line = File.ReadAllText("/proc/self/cmdline").TrimEnd('\0').Replace('\0', ' ');
            return line.Length > 200 ? line[..200] + "…" : line;
        }
        catch (IOException)
        {
            return "?";
        }
    }

    private static string ReadStatus(string key)
    {
        try
        {
            foreach (string line in File.ReadLines("/proc/self/status"))
            {
                if (line.StartsWith(key + ":", StringComparison.Ordinal))
                {
                    return line[(key.Length + 1)..].Trim();
                }
            }
        }
        catch (IOException)
        {
        }

        return "?";
    }

    /// <summary>Parses <c>2GiB</c>, <c>512MiB</c>, <c>64M</c>, <c>4096</c> (the tool's <see cref="Cli.Text.ByteSize"/>);
    /// 0 (no limit) for null, empty or unreadable text.</summary>
    internal static ulong ParseSize(string? text) => Cli.Text.ByteSize.TryParse(text, out Cli.Text.ByteSize size) ? size.Bytes : 0;
}
