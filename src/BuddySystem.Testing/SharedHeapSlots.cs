using System.Diagnostics;
using BuddySystem.Diagnostics;

namespace BuddySystem.Testing;

/// <summary>
/// The slot-table workload on a <see cref="SharedHeap"/>, shared by the hidden <c>buddy shm-worker</c> child process,
/// <c>buddy shm soak</c> and the process tests: every 8-byte word of the root area is a slot; worker w of W owns the
/// slots whose index ≡ w (mod W) and keeps in each either 0 or the offset of a patterned block of its own size.
/// </summary>
internal static unsafe class SharedHeapSlots
{
    /// <summary>The size of the block kept in slot <paramref name="index"/>: 16 B to 2 KiB by index.</summary>
    internal static ulong SizeFor(int index) => 16UL << (index % 8);

    /// <summary>The pattern cookie of slot <paramref name="index"/>'s block at <paramref name="offset"/>.</summary>
    internal static ulong CookieFor(int index, ulong offset) => ((ulong)index << 40) ^ offset;

    /// <summary>Runs worker <paramref name="worker"/> of <paramref name="workers"/>: <paramref name="operations"/> times
    /// (0 = until the process is killed) picks one of its slots; an empty slot gets a patterned block by
    /// <see cref="SharedHeap.AllocateInto"/>, a full one has its block's pattern checked and is freed by
    /// <see cref="SharedHeap.FreeFrom"/>.</summary>
    /// <param name="heap">The heap; other processes may use it at once.</param>
    /// <param name="worker">This worker's index, from 0.</param>
    /// <param name="workers">How many workers share the slots.</param>
    /// <param name="operations">Operations to run; 0 runs forever.</param>
    /// <param name="seed">Picks the slots; mixed with the worker index.</param>
    /// <param name="crashAfter">When not 0, the process SIGKILLs itself at the <paramref name="crashAfter"/>-th step of a
    /// change to the heap (<see cref="SharedHeap.s_crashPoint"/>): a kill inside the heap's critical section, which a kill
    /// from outside lands in only now and then.</param>
    /// <exception cref="SoakFailureException">A block this run of the worker patterned came back changed.</exception>
    internal static void RunWorker(SharedHeap heap, int worker, int workers, long operations, ulong seed, long crashAfter = 0)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(worker);
        ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(workers, worker);
        int mine = (heap.RootSize / 8) / workers;
        if (mine == 0)
        {
            throw new ArgumentException($"A root area of {heap.RootSize} bytes has no slot for each of {workers} workers.", nameof(workers));
        }

        if (crashAfter > 0)
        {
            long steps = 0;
            SharedHeap.s_crashPoint = () =>
            {
                if (++steps == crashAfter)
                {
                    Process.GetCurrentProcess().Kill(); // SIGKILL to itself: no finally block, no flush, runs after this
                }
            };
        }

        var random = new SplitMix64(seed ^ ((ulong)worker * 0x9E3779B97F4A7C15));
        for (long op = 0; operations == 0 || op < operations; op++)
        {
            int index = ((int)random.Next((ulong)mine) * workers) + worker;
            ulong slot = heap.RootOffset + ((ulong)index * 8);
            ulong offset = Volatile.Read(ref *(ulong*)heap.Pointer(slot));
            if (offset == 0)
            {
                offset = heap.AllocateInto(SizeFor(index), 16, slot);
                BlockPattern.Fill(heap.Pointer(offset), (nuint)SizeFor(index), CookieFor(index, offset));
            }
            else
            {
                // A block allocated just before a kill has no pattern yet (the fill follows AllocateInto), so only a run
                // that started on an empty table (operations > 0, the tests' runs without kills) checks every pattern;
                // an endless run frees blocks a killed predecessor never filled all the same.
                if (operations != 0 && BlockPattern.FirstMismatch(heap.Pointer(offset), (nuint)SizeFor(index), CookieFor(index, offset)) >= 0)
                {
                    throw new SoakFailureException($"worker {worker}: the block at offset {offset} of slot {index} lost its pattern");
                }

                heap.FreeFrom(slot);
            }
        }
    }

    /// <summary>Checks the promise of <see cref="SharedHeap.AllocateInto"/> and <see cref="SharedHeap.FreeFrom"/> when no
    /// process is using the heap: the allocated blocks are exactly those named by non-zero slots, none named twice, each of
    /// its slot's size (and, with <paramref name="patterns"/>, still patterned).</summary>
    /// <param name="heap">The heap, opened after the workers exited or were killed.</param>
    /// <param name="patterns">Also check every block's pattern (only when no worker was killed).</param>
    /// <returns>How many blocks were checked.</returns>
    /// <exception cref="SoakFailureException">A block is lost (allocated, in no slot), doubly owned (in two slots), named
    /// but free, of the wrong size, or changed.</exception>
    internal static int Check(SharedHeap heap, bool patterns)
    {
        HeapSnapshot snapshot = HeapSnapshot.Of(heap);
        var allocated = new Dictionary<ulong, ulong>();
        foreach (HeapBlock block in snapshot.Blocks)
        {
            if (block.State == BlockState.Allocated)
            {
                allocated.Add(block.Offset + snapshot.BaseAddress, block.Size);
            }
        }

        var named = new Dictionary<ulong, int>();
        for (int i = 0; i < heap.RootSize / 8; i++)
        {
            ulong offset = *(ulong*)heap.Pointer(heap.RootOffset + ((ulong)i * 8));
            if (offset == 0)
            {
                continue;
            }

            if (!named.TryAdd(offset, i))
            {
                throw new SoakFailureException($"doubly owned: offset {offset} is named by slots {named[offset]} and {i}");
            }

            if (!allocated.TryGetValue(offset, out ulong size))
            {
                throw new SoakFailureException($"slot {i} names offset {offset}, which is not an allocated block");
            }

            if (size != SizeFor(i))
            {
                throw new SoakFailureException($"slot {i} names a block of {size} bytes at {offset}; its blocks are {SizeFor(i)} bytes");
            }

            if (patterns && BlockPattern.FirstMismatch(heap.Pointer(offset), (nuint)size, CookieFor(i, offset)) is long bad and >= 0)
            {
                throw new SoakFailureException($"the block at offset {offset} of slot {i} changed at byte {bad}");
            }
        }

        foreach (ulong offset in allocated.Keys)
        {
            if (!named.ContainsKey(offset))
            {
                throw new SoakFailureException($"lost: the block at offset {offset} ({allocated[offset]} bytes) is allocated but no slot names it");
            }
        }

        return named.Count;
    }
}
