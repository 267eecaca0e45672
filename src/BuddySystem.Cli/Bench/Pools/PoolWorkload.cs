namespace BuddySystem.Cli.Bench.Pools;

/// <summary>
/// The <c>pool</c> workload of docs/benchmarks.md: renting threads that each keep 16 buffers of the <c>pool-mix</c> sizes
/// (<see cref="SizeFor"/>), replacing a random one per operation, and hand one return in eight to a returning thread.
/// </summary>
/// <remarks>
/// One operation is one rent and the return of the buffer it replaces. Every buffer is written at its first and last
/// requested byte, so a pool's memory is touched as a user's would be. The time runs from the common start to the moment the
/// last renting thread and the returning thread are done; the GC bytes are the whole process's over that time
/// (<see cref="GC.GetTotalAllocatedBytes(bool)"/>, precise), so a pool's background work counts too.
/// </remarks>
internal static class PoolWorkload
{
    /// <summary>Buffers each renting thread keeps live.</summary>
    public const int LiveSlots = 16;

    /// <summary>One return in this many goes to the returning thread.</summary>
    public const int RemoteReturnEvery = 8;

    /// <summary>Buffers in flight from one renting thread to the returning thread; when its ring is full, the renting thread
    /// returns the buffer itself (counted in <see cref="PoolMeasurement.LocalFallbacks"/>).</summary>
    public const int HandOffCapacity = 64;

    /// <summary>The seed of thread t is this + t.</summary>
    public const ulong Seed = 0x9001;

    // pool-mix: (bytes, weight in percent). Kestrel/Pipelines segments (4 KiB) are the most common; 1 MiB is the largest a
    // BuddyMemoryPool hands out by default.
    private static readonly (int Bytes, int Weight)[] s_mix =
    [
        (256, 20), (1 << 10, 20), (4 << 10, 30), (16 << 10, 15), (64 << 10, 10), (256 << 10, 4), (1 << 20, 1),
    ];

    // The mix spread over 100 entries, so a size is one table read.
    private static readonly int[] s_sizeByPercent = BuildSizeTable();

    /// <summary>The <c>pool-mix</c> distribution, as (bytes, percent) pairs: what docs/benchmarks.md names.</summary>
    public static IReadOnlyList<(int Bytes, int Weight)> Mix => s_mix;

    /// <summary>The size of a rent from one random draw: <c>pool-mix</c> picked by <c>draw % 100</c>.</summary>
    public static int SizeFor(ulong draw) => s_sizeByPercent[(int)(draw % 100)];

    /// <summary>Runs <paramref name="opsPerThread"/> operations on each of <paramref name="threads"/> renting threads plus
    /// the returning thread, all on <paramref name="pool"/>; returns every buffer before it returns.</summary>
    /// <param name="pool">The pool.</param>
    /// <param name="threads">Renting threads.</param>
    /// <param name="opsPerThread">Timed operations per renting thread.</param>
    /// <param name="warmUpOpsPerThread">Operations each renting thread runs first, untimed, on the same threads (as in a
    /// server whose threads live long, thread-local caches of every pool are warm when the clock starts).</param>
    public static PoolMeasurement Run<T>(T pool, int threads, int opsPerThread, int warmUpOpsPerThread = 0)
        where T : struct, IBenchPool
    {
        var rings = new HandOffRing[threads];
        var failed = new long[threads];
        var fallbacks = new long[threads];
        var workers = new Thread[threads + 1];
        int ready = 0;
        int go = 0;
        int running = threads;
        for (int t = 0; t < threads; t++)
        {
            int index = t;
            rings[t] = new HandOffRing(HandOffCapacity);
            T copy = pool; // the adapters are handles to one shared pool: copies share it
            workers[t] = new Thread(() =>
            {
                var slots = new object?[LiveSlots];
                RentLoop(ref copy, Seed + 0x100 + (ulong)index, warmUpOpsPerThread, slots, rings[index]);
                Interlocked.Increment(ref ready);
                WaitFor(ref go);
                (failed[index], fallbacks[index]) = RentLoop(ref copy, Seed + (ulong)index, opsPerThread, slots, rings[index]);
                Interlocked.Decrement(ref running);
            })
            { IsBackground = true, Name = $"pool renter {t}" };
        }

        T returner = pool;
        workers[threads] = new Thread(() =>
        {
            // Running from the start, so the warm-up's hand-offs are returned too.
            Interlocked.Increment(ref ready);
            ReturnLoop(ref returner, rings, ref running);
        })
        { IsBackground = true, Name = "pool returner" };

        foreach (Thread worker in workers)
        {
            worker.Start();
        }

        while (Volatile.Read(ref ready) < workers.Length)
        {
            Thread.Yield();
        }

        long allocatedBefore = GC.GetTotalAllocatedBytes(precise: true);
        long start = Stopwatch.GetTimestamp();
        Volatile.Write(ref go, 1);
        foreach (Thread worker in workers)
        {
            worker.Join();
        }

        long elapsed = Stopwatch.GetTimestamp() - start;
        long allocated = GC.GetTotalAllocatedBytes(precise: true) - allocatedBefore;
        return new PoolMeasurement((long)threads * opsPerThread, elapsed, failed.Sum(), allocated, fallbacks.Sum());
    }

    private static (long Failed, long Fallbacks) RentLoop<T>(ref T pool, ulong seed, int ops, object?[] slots, HandOffRing ring)
        where T : struct, IBenchPool
    {
        var random = new SplitMix64(seed);
        long failed = 0;
        long fallbacks = 0;
        for (int i = 0; i < ops; i++)
        {
            ulong draw = random.Next();
            int slot = (int)(draw % LiveSlots);
            object? old = slots[slot];
            if (old is not null)
            {
                slots[slot] = null;
                if ((draw >> 8) % RemoteReturnEvery != 0)
                {
                    pool.Return(old);
                }
                else if (!ring.TryPush(old))
                {
                    fallbacks++;
                    pool.Return(old);
                }
            }

            int size = SizeFor(draw >> 16);
            object buffer;
            try
            {
                buffer = pool.Rent(size);
            }
            catch (OutOfMemoryException)
            {
                // HeapExhaustedException: counted, and the slot stays empty, so the stream of draws goes on unchanged.
                failed++;
                continue;
            }

            Span<byte> bytes = pool.Bytes(buffer, size);
            bytes[0] = (byte)i;
            bytes[^1] = (byte)i;
            slots[slot] = buffer;
        }

        ReturnAll(ref pool, slots);

        return (failed, fallbacks);
    }

    // Returns what a thread holds: the timed loop starts from an empty live set whether or not a warm-up ran.
    private static void ReturnAll<T>(ref T pool, object?[] slots)
        where T : struct, IBenchPool
    {
        for (int slot = 0; slot < slots.Length; slot++)
        {
            if (slots[slot] is { } buffer)
            {
                pool.Return(buffer);
                slots[slot] = null;
            }
        }
    }

    private static void ReturnLoop<T>(ref T pool, HandOffRing[] rings, ref int running)
        where T : struct, IBenchPool
    {
        SpinWait spin = default;
        while (true)
        {
            // Read before draining: a ring emptied after every renter stopped stays empty.
            bool last = Volatile.Read(ref running) == 0;
            bool any = false;
            foreach (HandOffRing ring in rings)
            {
                while (ring.TryPop(out object? buffer))
                {
                    pool.Return(buffer);
                    any = true;
                }
            }

            if (last)
            {
                return;
            }

            if (any)
            {
                spin.Reset();
            }
            else
            {
                // On a shared 2-core machine the returner must not starve the renters: SpinOnce yields and then sleeps.
                spin.SpinOnce(sleep1Threshold: -1);
            }
        }
    }

    private static void WaitFor(ref int go)
    {
        SpinWait spin = default;
        while (Volatile.Read(ref go) == 0)
        {
            spin.SpinOnce(-1);
        }
    }

    private static int[] BuildSizeTable()
    {
        var table = new List<int>(100);
        foreach (var (bytes, weight) in s_mix)
        {
            table.AddRange(Enumerable.Repeat(bytes, weight));
        }

        return table.Count == 100 ? [.. table] : throw new InvalidOperationException("pool-mix weights must add up to 100.");
    }

    /// <summary>A single-producer, single-consumer ring of buffers, allocation-free once built, so the hand-off costs no
    /// GC bytes of its own and every GC byte measured is the pool's.</summary>
    private sealed class HandOffRing(int capacity)
    {
        private readonly object?[] _items = new object?[capacity];
        private long _head; // next to pop; written by the consumer
        private long _tail; // next to push; written by the producer

        public bool TryPush(object buffer)
        {
            long tail = _tail;
            if (tail - Volatile.Read(ref _head) == _items.Length)
            {
                return false;
            }

            _items[tail % _items.Length] = buffer;
            Volatile.Write(ref _tail, tail + 1);
            return true;
        }

        public bool TryPop([System.Diagnostics.CodeAnalysis.NotNullWhen(true)] out object? buffer)
        {
            long head = _head;
            if (head == Volatile.Read(ref _tail))
            {
                buffer = null;
                return false;
            }

            long index = head % _items.Length;
            buffer = _items[index]!;
            _items[index] = null;
            Volatile.Write(ref _head, head + 1);
            return true;
        }
    }
}
