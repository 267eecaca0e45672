using System.Globalization;
using System.Numerics;
using System.Runtime.InteropServices;

namespace BuddySystem.Malloc;

/// <summary>
/// The entry points the C loader (native/loader.c) calls. Each is one C-to-managed transition; the loader calls them only
/// for pointers in the reserved range and outside its re-entrancy guard. A null result means ENOMEM (the loader sets
/// errno); misuse prints one line on stderr naming the address and the problem, then aborts.
/// </summary>
internal static unsafe class Exports
{
    private const int EInval = 22;
    private const int ENoMem = 12;
    private const nuint PageSize = 4096;

    /// <summary>Initialises the heap at the first request the loader's start-up arena cannot serve; takes over the
    /// accounting of that arena (<paramref name="arena"/>); gives the loader what it reads (<see cref="LoaderShared"/>).
    /// Returns 1 on success, 0 to leave everything to glibc.</summary>
    [UnmanagedCallersOnly(EntryPoint = "bm_init")]
    private static int Init(LoaderShared** shared, BootArena* arena)
    {
        try
        {
            if (!ProcessHeap.Initialize(arena, out _, out _))
            {
                return 0;
            }

            *shared = ProcessHeap.Shared;
            return 1;
        }
        catch (Exception error)
        {
            Libc.WriteError($"buddymalloc: cannot start, using glibc's malloc: {error.Message}\n");
            return 0;
        }
    }

    /// <summary>An export that does no work: bench/malloc-cost measures one C-to-managed transition with it.</summary>
    [UnmanagedCallersOnly(EntryPoint = "bm_probe")]
    private static long Probe(long value) => value + 1;

    /// <summary>A thread's first small allocation: sets the bounds of its loader caches (one per size class) and returns
    /// the id its slabs name as their owner.</summary>
    [UnmanagedCallersOnly(EntryPoint = "bm_thread_caches")]
    private static nint ThreadCaches(BuddyHeap.OrderCache* caches) => ProcessHeap.StartThreadCaches(caches);

    /// <summary>Refills the thread's empty loader cache of class <paramref name="index"/>; 0 means ENOMEM.</summary>
    [UnmanagedCallersOnly(EntryPoint = "bm_refill")]
    private static int Refill(int index, BuddyHeap.OrderCache* cache)
    {
        try
        {
            return ProcessHeap.Refill(index, cache) ? 1 : 0;
        }
        catch (Exception error)
        {
            Die("malloc", error);
            return 0;
        }
    }

    /// <summary>Frees half of the thread's full loader cache of class <paramref name="index"/>.</summary>
    [UnmanagedCallersOnly(EntryPoint = "bm_flush")]
    private static void Flush(int index, BuddyHeap.OrderCache* cache)
    {
        try
        {
            ProcessHeap.Flush(index, cache);
        }
        catch (Exception error)
        {
            Die("free", error);
        }
    }

    /// <summary>malloc(size).</summary>
    [UnmanagedCallersOnly(EntryPoint = "bm_malloc")]
    private static void* Malloc(nuint size) => ProcessHeap.Allocate(size, 1);

    /// <summary>calloc(count, size): null on overflow; the block is zeroed (a reused block may hold old bytes).</summary>
    [UnmanagedCallersOnly(EntryPoint = "bm_calloc")]
    private static void* Calloc(nuint count, nuint size)
    {
        if (Math.BigMul((ulong)count, (ulong)size, out ulong bytes) != 0)
        {
            return null;
        }

        void* block = ProcessHeap.Allocate((nuint)bytes, 1);
        if (block != null)
        {
            NativeMemory.Clear(block, (nuint)bytes);
        }

        return block;
    }

    /// <summary>free(block) of a block in the reserved range.</summary>
    [UnmanagedCallersOnly(EntryPoint = "bm_free")]
    private static void Free(void* block)
    {
        try
        {
            ProcessHeap.Free(block);
        }
        catch (Exception error)
        {
            Die("free", error);
        }
    }

    /// <summary>realloc(block, size) of a block in the reserved range; size 0 frees and returns null.</summary>
    [UnmanagedCallersOnly(EntryPoint = "bm_realloc")]
    private static void* Realloc(void* block, nuint size)
    {
        try
        {
            return ProcessHeap.Reallocate(block, size);
        }
        catch (Exception error)
        {
            Die("realloc", error);
            return null;
        }
    }

    /// <summary>malloc_usable_size(block) of a block in the reserved range: its whole block size.</summary>
    [UnmanagedCallersOnly(EntryPoint = "bm_usable_size")]
    private static nuint UsableSize(void* block)
    {
        try
        {
            return ProcessHeap.Heap.UsableSize(block);
        }
        catch (Exception error)
        {
            Die("malloc_usable_size", error);
            return 0;
        }
    }

    /// <summary>
    /// The aligned allocations. <paramref name="kind"/>: 0 posix_memalign (EINVAL unless a power of two multiple of
    /// sizeof(void*)), 1 memalign and aligned_alloc (glibc 2.36: a non-power of two rounds up), 2 valloc, 3 pvalloc (size
    /// rounded up to pages). Returns 0 or the errno value; the block goes to <paramref name="result"/>.
    /// </summary>
    [UnmanagedCallersOnly(EntryPoint = "bm_memalign")]
    private static int Memalign(int kind, nuint align, nuint size, void** result)
    {
        *result = null;
        switch (kind)
        {
            case 0:
                if (!BitOperations.IsPow2(align) || align % (nuint)sizeof(void*) != 0)
                {
                    return EInval;
                }

                break;
            case 1:
                if (align > ProcessHeap.MaxRequest)
                {
                    return EInval;
                }

                align = align <= 1 ? 1 : BitOperations.RoundUpToPowerOf2(align);
                break;
            case 2:
                align = PageSize;
                break;
            default:
                align = PageSize;
                if (size > ProcessHeap.MaxRequest)
                {
                    return ENoMem;
                }

                size = size == 0 ? PageSize : (size + PageSize - 1) & ~(PageSize - 1);
                break;
        }

        void* block = ProcessHeap.Allocate(size, align);
        if (block == null)
        {
            return ENoMem;
        }

        *result = block;
        return 0;
    }

    /// <summary>pthread_atfork prepare: takes the heap's locks.</summary>
    [UnmanagedCallersOnly(EntryPoint = "bm_fork_prepare")]
    private static void ForkPrepare() => ProcessHeap.ForkPrepare();

    /// <summary>A free from another thread, in the loader, made a full slab's thread-free list non-empty: the slab goes back
    /// to its owner's list of slabs with free objects.</summary>
    [UnmanagedCallersOnly(EntryPoint = "bm_revive")]
    private static void Revive(void* slab)
    {
        try
        {
            ProcessHeap.ReviveSlab(slab);
        }
        catch (Exception error)
        {
            Die("free", error);
        }
    }

    /// <summary>pthread_atfork parent and child: releases them.</summary>
    [UnmanagedCallersOnly(EntryPoint = "bm_fork_done")]
    private static void ForkDone() => ProcessHeap.ForkDone();

    /// <summary>Whether BUDDY_MALLOC_STATS asks for the report at exit (the loader then registers it with atexit).</summary>
    [UnmanagedCallersOnly(EntryPoint = "bm_wants_report")]
    private static int WantsReport() => Libc.Environment("BUDDY_MALLOC_STATS") is { Length: > 0 } value && value != "0" ? 1 : 0;

    /// <summary>Whether BUDDY_MALLOC_MAP names a file for the heap's snapshot at exit (the loader then registers it with atexit).</summary>
    [UnmanagedCallersOnly(EntryPoint = "bm_wants_map")]
    private static int WantsMap() => Libc.Environment(ProcessHeap.MapVariable) is { Length: > 0 } ? 1 : 0;

    /// <summary>Writes the heap's snapshot to the file BUDDY_MALLOC_MAP names (see <see cref="ProcessHeap.WriteMap"/>).</summary>
    [UnmanagedCallersOnly(EntryPoint = "bm_write_map")]
    private static void WriteMap()
    {
        try
        {
            ProcessHeap.WriteMap(Libc.Environment(ProcessHeap.MapVariable)!);
        }
        catch (Exception error)
        {
            Libc.WriteError($"buddymalloc: no map: {error.Message}\n");
        }
    }

    /// <summary>Prints the report of <see cref="ProcessHeap.Report"/> on stderr.</summary>
    [UnmanagedCallersOnly(EntryPoint = "bm_report")]
    private static void Report()
    {
        try
        {
            Libc.WriteError(ProcessHeap.Report());
        }
        catch (Exception error)
        {
            Libc.WriteError($"buddymalloc: no report: {error.Message}\n");
        }
    }

    /// <summary>Misuse from C: one line naming the call, the address and the problem (the engine's message), then SIGABRT.</summary>
    private static void Die(string call, Exception error)
    {
        try
        {
            // Without resource strings (UseSystemResourceKeys) an ArgumentException ends in its parameter name's resource key.
            string message = error.Message;
            int key = message.IndexOf(" Arg_ParamName_Name", StringComparison.Ordinal);
            Libc.WriteError(string.Create(CultureInfo.InvariantCulture, $"buddymalloc: {call}(): {(key < 0 ? message : message[..key])}\n"));
        }
        finally
        {
            Libc.Abort();
        }
    }
}
