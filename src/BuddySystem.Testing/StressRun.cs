using System.Globalization;

namespace BuddySystem.Testing;

/// <summary>What a <see cref="StressRun"/> did.</summary>
internal readonly record struct StressResult(
    string Engine,
    int Threads,
    int Scale,
    int Iterations,
    long Allocations,
    long Frees,
    long FailedAllocations,
    long Transfers,
    long Corruptions,
    string? FirstCorruption,
    TimeSpan Elapsed)
{
    public long Operations => Allocations + Frees;

    public double OperationsPerSecond => Operations / Math.Max(Elapsed.TotalSeconds, 1e-9);
}

/// <summary>
/// A multi-thread stress in the shape of mimalloc's <c>test/test-stress.c</c> (idea credited to mimalloc; code our own):
/// each round starts <c>threads</c> threads that allocate, retain, free and trade blocks through a shared transfer array
/// (<see cref="Interlocked.Exchange(ref nint, nint)"/>), so blocks are freed on other threads than the one that
/// allocated them. Every word of a block is written from a per-block cookie and checked when it is freed.
/// </summary>
/// <remarks>
/// Block layout: word 0 is the cookie, word i (i ≥ 1) is <c>(items - i) ^ cookie</c>, so the block carries its own
/// size and any overlap with another block, or a write by the allocator into a live block, shows at free. Sizes are
/// 2..32 words mostly, with 1 % of requests 100× or 1000× larger, as in test-stress.
/// </remarks>
internal sealed unsafe class StressRun
{
    /// <summary>Slots of the shared transfer array (test-stress uses 1000).</summary>
    internal const int TransferSlots = 1000;

    private const int MaxItemShift = 5;
    private const int MaxRetainedShift = MaxItemShift + 2;

    private readonly IAllocator _heap;
    private readonly nint[] _transfer = new nint[TransferSlots];
    private long _allocations;
    private long _frees;
    private long _failed;
    private long _transfers;
    private long _corruptions;
    private string? _firstCorruption;

    private StressRun(IAllocator heap) => _heap = heap;

    /// <summary>Runs <paramref name="iterations"/> rounds of <paramref name="threads"/> threads on <paramref name="target"/>;
    /// <paramref name="roundDone"/>, when given, is called with the number of rounds done after each.</summary>
    internal static StressResult Run(HeapTarget target, int threads, int scale, int iterations, ulong seed = 0x5EED, Action<int>? roundDone = null)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(threads);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(scale);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(iterations);
        if (!target.IsThreadSafe && threads > 1)
        {
            throw new ArgumentException($"{target.Name} is not thread-safe.", nameof(target));
        }

        var run = new StressRun(target.Allocator);
        var clock = System.Diagnostics.Stopwatch.StartNew();
        var rng = new SplitMix64(seed);
        for (int round = 0; round < iterations; round++)
        {
            var workers = new Thread[threads];
            for (int t = 0; t < threads; t++)
            {
                int tid = t;
                ulong threadSeed = seed + (ulong)(round * threads + t + 1) * 43;
                workers[t] = new Thread(() => run.Stress(tid, scale, threadSeed)) { IsBackground = true, Name = $"stress-{tid}" };
                workers[t].Start();
            }

            foreach (Thread worker in workers)
            {
                worker.Join();
            }

            // Between rounds free about half of the parked blocks, and all of them after the last round.
            for (int slot = 0; slot < TransferSlots; slot++)
            {
                if (rng.Next(2) == 0 || round + 1 == iterations)
                {
                    run._frees += run.FreeItems(Interlocked.Exchange(ref run._transfer[slot], 0));
                }
            }

            roundDone?.Invoke(round + 1);
        }

        clock.Stop();
        HeapStats stats = target.Stats;
        target.Validate();
        if (stats.LiveBlocks != 0 || stats.AllocatedBytes != 0)
        {
            run.Report(string.Create(CultureInfo.InvariantCulture, $"after the last round {stats.LiveBlocks} blocks ({stats.AllocatedBytes} bytes) are still allocated"));
        }

        return new StressResult(target.Name, threads, scale, iterations, run._allocations, run._frees, run._failed, run._transfers, run._corruptions, run._firstCorruption, clock.Elapsed);
    }

    private void Stress(int tid, int scale, ulong seed)
    {
        var rng = new SplitMix64(seed);
        long allocs = 100L * scale * (tid % 8 + 1); // some threads do more, as in test-stress
        long retain = allocs / 2;
        var data = new List<nint>();
        var retained = new List<nint>((int)Math.Min(retain, 1 << 20));
        long allocations = 0, frees = 0, failed = 0, transfers = 0;
        while (allocs > 0 || retain > 0)
        {
            if (retain == 0 || (Chance(50, ref rng) && allocs > 0))
            {
                allocs--;
                data.Add(AllocItems(1L << (int)rng.Next(MaxItemShift), ref rng, ref allocations, ref failed));
            }
            else
            {
                retained.Add(AllocItems(1L << (int)rng.Next(MaxRetainedShift), ref rng, ref allocations, ref failed));
                retain--;
            }

            if (Chance(66, ref rng) && data.Count > 0)
            {
                int index = (int)rng.Next((ulong)data.Count);
                frees += FreeItems(data[index]);
                data[index] = 0;
            }

            if (Chance(25, ref rng) && data.Count > 0)
            {
                // Trade a local block for whatever another thread parked in the slot: cross-thread frees.
                int index = (int)rng.Next((ulong)data.Count);
                int slot = (int)rng.Next(TransferSlots);
                data[index] = Interlocked.Exchange(ref _transfer[slot], data[index]);
                transfers++;
            }
        }

        foreach (nint block in retained)
        {
            frees += FreeItems(block);
        }

        foreach (nint block in data)
        {
            frees += FreeItems(block);
        }

        Interlocked.Add(ref _allocations, allocations);
        Interlocked.Add(ref _frees, frees);
        Interlocked.Add(ref _failed, failed);
        Interlocked.Add(ref _transfers, transfers);
    }

    private nint AllocItems(long items, ref SplitMix64 rng, ref long allocations, ref long failed)
    {
        if (Chance(1, ref rng))
        {
            items *= Chance(10, ref rng) ? 1000 : 100;
        }

        items = Math.Max(items, 2);
        var layout = new Layout((nuint)items * 8, 8);
        ulong* block = (ulong*)_heap.Allocate(layout);
        if (block == null)
        {
            failed++;
            return 0;
        }

        allocations++;
        ulong cookie = rng.Next() | 1;
        block[0] = cookie;
        for (long i = 1; i < items; i++)
        {
            block[i] = (ulong)(items - i) ^ cookie;
        }

        return (nint)block;
    }

    /// <summary>Checks and frees a block (0 is no block); returns the number of frees done.</summary>
    private long FreeItems(nint address)
    {
        if (address == 0)
        {
            return 0;
        }

        ulong* block = (ulong*)address;
        ulong cookie = block[0];
        long items = (long)((block[1] ^ cookie) + 1);
        if (items < 2 || items > (1L << MaxRetainedShift) * 1000)
        {
            Report($"block 0x{address:x}: its size word is corrupted (cookie 0x{cookie:x}, word 1 0x{block[1]:x})");
            return 0; // its size is unknown, so it cannot be freed; the leak is reported through the live count too
        }

        for (long i = 1; i < items; i++)
        {
            if ((block[i] ^ cookie) != (ulong)(items - i))
            {
                Report($"block 0x{address:x} of {items} words: word {i} is 0x{block[i]:x}, expected 0x{(ulong)(items - i) ^ cookie:x}");
                break;
            }
        }

        try
        {
            _heap.Deallocate(block, new Layout((nuint)items * 8, 8));
        }
        catch (ArgumentException error)
        {
            // A size word that was overwritten with a plausible value gives the wrong layout: the heap refuses it.
            Report($"block 0x{address:x}: the heap refused its free: {error.Message}");
            return 0;
        }

        return 1;
    }

    private void Report(string corruption)
    {
        Interlocked.Increment(ref _corruptions);
        Interlocked.CompareExchange(ref _firstCorruption, corruption, null);
    }

    private static bool Chance(int percent, ref SplitMix64 rng) => rng.Next(100) < (ulong)percent;
}
