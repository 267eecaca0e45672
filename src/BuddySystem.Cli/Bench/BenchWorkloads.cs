namespace BuddySystem.Cli.Bench;

/// <summary>
/// The workloads W1–W6 of docs/benchmarks.md as generic loops over a struct adapter: the JIT compiles one copy per allocator
/// with direct calls, so no allocator pays for an interface dispatch the others skip.
/// </summary>
/// <remarks>Arrays for the live blocks are allocated before the clock starts; the timed loops allocate nothing managed.</remarks>
internal static class BenchWorkloads
{
    /// <summary>The heap size of docs/benchmarks.md: 32 MiB, region aligned to 32 MiB.</summary>
    public const int HeapSize = 32 << 20;

    /// <summary>
    /// The heap a case runs on: <see cref="HeapSize"/>, and for W5 <see cref="HeapSize"/> × threads, since each thread's W3
    /// live set needs up to ~20 MiB and a run with failed allocations would measure the failure path, not scaling.
    /// </summary>
    public static nuint HeapSizeFor(WorkloadCase workload) =>
        (nuint)(workload.Workload == "W5" ? (long)HeapSize * workload.Value : HeapSize);

    private const nuint Align8 = 8;

    /// <summary>Runs one case once on <paramref name="allocator"/>.</summary>
    public static Measurement Run<T>(ref T allocator, WorkloadCase workload, BenchScale scale)
        where T : struct, IBenchAllocator => workload.Workload switch
        {
            "W1" => W1(ref allocator, scale.W1Pairs),
            "W2" => W2(ref allocator, (nuint)workload.Value, scale.W2Repetitions),
            "W3" => W3(ref allocator, scale.W3Ops),
            "W4" => W4(ref allocator, workload.Value),
            "W5" => W5(allocator, workload.Value, scale.W5OpsPerThread),
            "W6" => W6(ref allocator, scale.W6Rounds),
            _ => throw new ArgumentException($"Unknown workload '{workload.Workload}'.", nameof(workload)),
        };

    /// <summary>W1: allocate 16 B align 8 and free it at once, <paramref name="pairs"/> times. Ops = pairs.</summary>
    public static Measurement W1<T>(ref T allocator, long pairs)
        where T : struct, IBenchAllocator
    {
        long failed = 0;
        long start = Stopwatch.GetTimestamp();
        for (long i = 0; i < pairs; i++)
        {
            nuint block = allocator.Allocate(16, Align8);
            if (block == 0)
            {
                failed++;
                continue;
            }

            allocator.Free(block, 16, Align8);
        }

        return new Measurement(pairs, Stopwatch.GetTimestamp() - start, failed);
    }

    /// <summary>W2: allocate 8 MiB / <paramref name="size"/> blocks, free them in allocation order; repeated. Ops = pairs.</summary>
    public static Measurement W2<T>(ref T allocator, nuint size, int repetitions)
        where T : struct, IBenchAllocator
    {
        int count = (int)((8u << 20) / size);
        var blocks = new nuint[count];
        long failed = 0;
        long start = Stopwatch.GetTimestamp();
        for (int repetition = 0; repetition < repetitions; repetition++)
        {
            for (int i = 0; i < blocks.Length; i++)
            {
                nuint block = allocator.Allocate(size, Align8);
                failed += block == 0 ? 1 : 0;
                blocks[i] = block;
            }

            for (int i = 0; i < blocks.Length; i++)
            {
                if (blocks[i] != 0)
                {
                    allocator.Free(blocks[i], size, Align8);
                }
            }
        }

        return new Measurement((long)count * repetitions, Stopwatch.GetTimestamp() - start, failed);
    }

    /// <summary>W3: the <see cref="W3Stream"/> from seed 0x5EED for <paramref name="ops"/> operations. Ops = operations.</summary>
    public static Measurement W3<T>(ref T allocator, int ops)
        where T : struct, IBenchAllocator
    {
        var blocks = new nuint[W3Stream.LiveCap];
        var sizes = new nuint[W3Stream.LiveCap];
        long start = Stopwatch.GetTimestamp();
        long failed = W3Loop(ref allocator, W3Stream.DefaultSeed, ops, blocks, sizes);
        long elapsed = Stopwatch.GetTimestamp() - start;
        FreeLive(ref allocator, blocks, sizes, W3Stream.LiveCap);
        return new Measurement(ops, elapsed, failed);
    }

    /// <summary>
    /// The W3 loop: a failed allocation keeps its slot with block 0, whose free is skipped, so every allocator follows
    /// the same stream. Leaves the live blocks in <paramref name="blocks"/> (0 elsewhere); returns the failed count.
    /// </summary>
    private static long W3Loop<T>(ref T allocator, ulong seed, int ops, nuint[] blocks, nuint[] sizes)
        where T : struct, IBenchAllocator
    {
        var stream = new W3Stream(seed);
        long failed = 0;
        for (int i = 0; i < ops; i++)
        {
            W3Op op = stream.Next();
            if (op.IsAllocate)
            {
                nuint size = (nuint)op.Size;
                nuint block = allocator.Allocate(size, (nuint)W3Stream.Align);
                failed += block == 0 ? 1 : 0;
                blocks[op.Index] = block;
                sizes[op.Index] = size;
            }
            else
            {
                nuint block = blocks[op.Index];
                if (block != 0)
                {
                    allocator.Free(block, sizes[op.Index], (nuint)W3Stream.Align);
                }

                int last = stream.Live;
                blocks[op.Index] = blocks[last];
                sizes[op.Index] = sizes[last];
                blocks[last] = 0;
            }
        }

        return failed;
    }

    /// <summary>W4: allocate n × 16 B, shuffle with SplitMix64(0xF00D) Fisher–Yates, time only the n frees. Ops = frees.</summary>
    public static Measurement W4<T>(ref T allocator, int n)
        where T : struct, IBenchAllocator
    {
        var blocks = new nuint[n];
        long failed = 0;
        for (int i = 0; i < n; i++)
        {
            blocks[i] = allocator.Allocate(16, Align8);
            failed += blocks[i] == 0 ? 1 : 0;
        }

        var random = new SplitMix64(0xF00D);
        for (int i = n - 1; i >= 1; i--)
        {
            int j = (int)random.Next((ulong)(i + 1));
            (blocks[i], blocks[j]) = (blocks[j], blocks[i]);
        }

        long start = Stopwatch.GetTimestamp();
        for (int i = 0; i < blocks.Length; i++)
        {
            if (blocks[i] != 0)
            {
                allocator.Free(blocks[i], 16, Align8);
            }
        }

        return new Measurement(n, Stopwatch.GetTimestamp() - start, failed);
    }

    /// <summary>
    /// W5: W3 on <paramref name="threads"/> threads at once on one heap, thread t seeded 0x5EED + t. Ops = all threads'
    /// operations; the time is wall time from the common start to the last thread's end.
    /// </summary>
    public static Measurement W5<T>(T allocator, int threads, int opsPerThread)
        where T : struct, IBenchAllocator
    {
        var workers = new Thread[threads];
        var blocks = new nuint[threads][];
        var sizes = new nuint[threads][];
        var failed = new long[threads];
        int ready = 0;
        int go = 0;
        for (int t = 0; t < threads; t++)
        {
            int index = t;
            blocks[t] = new nuint[W3Stream.LiveCap];
            sizes[t] = new nuint[W3Stream.LiveCap];
            T copy = allocator; // the adapters are handles to one shared heap: copies share it
            workers[t] = new Thread(() =>
            {
                Interlocked.Increment(ref ready);
                SpinWait spin = default;
                while (Volatile.Read(ref go) == 0)
                {
                    spin.SpinOnce(-1);
                }

                failed[index] = W3Loop(ref copy, W3Stream.DefaultSeed + (ulong)index, opsPerThread, blocks[index], sizes[index]);
            })
            { IsBackground = true, Name = $"W5 worker {t}" };
            workers[t].Start();
        }

        while (Volatile.Read(ref ready) < threads)
        {
            Thread.Yield();
        }

        long start = Stopwatch.GetTimestamp();
        Volatile.Write(ref go, 1);
        foreach (Thread worker in workers)
        {
            worker.Join();
        }

        long elapsed = Stopwatch.GetTimestamp() - start;
        for (int t = 0; t < threads; t++)
        {
            FreeLive(ref allocator, blocks[t], sizes[t], W3Stream.LiveCap);
        }

        return new Measurement((long)threads * opsPerThread, elapsed, failed.Sum());
    }

    /// <summary>
    /// W6, talc's heap-efficiency method: per round, from an empty heap, 50 % allocate U[1, 10 000) bytes, 10 % free a
    /// random live block, 40 % reallocate one to U[1, 100 000), until the first failed allocation; efficiency = live
    /// requested bytes then / heap size, averaged over the rounds. Round r draws from SplitMix64(0x5EED + r); with no live
    /// block a free or reallocate becomes an allocate. Freeing every block ends a round, which leaves a buddy heap exactly
    /// as fresh (every block merges back). Ops = all rounds' operations; Failed = rounds ended by a failure.
    /// </summary>
    public static Measurement W6<T>(ref T allocator, int rounds)
        where T : struct, IBenchAllocator
    {
        const long MaxOpsPerRound = 10_000_000;
        var blocks = new List<nuint>();
        var sizes = new List<nuint>();
        double efficiencySum = 0;
        long ops = 0;
        long failedRounds = 0;
        long start = Stopwatch.GetTimestamp();
        for (int round = 0; round < rounds; round++)
        {
            var random = new SplitMix64(W3Stream.DefaultSeed + (ulong)round);
            ulong liveBytes = 0;
            for (long step = 0; step < MaxOpsPerRound; step++)
            {
                ops++;
                ulong dice = random.Next(10);
                if (dice < 5 || blocks.Count == 0)
                {
                    nuint size = (nuint)(1 + random.Next(9_999));
                    nuint block = allocator.Allocate(size, Align8);
                    if (block == 0)
                    {
                        failedRounds++;
                        break;
                    }

                    blocks.Add(block);
                    sizes.Add(size);
                    liveBytes += size;
                }
                else if (dice == 5)
                {
                    int index = (int)random.Next((ulong)blocks.Count);
                    allocator.Free(blocks[index], sizes[index], Align8);
                    liveBytes -= sizes[index];
                    blocks[index] = blocks[^1];
                    sizes[index] = sizes[^1];
                    blocks.RemoveAt(blocks.Count - 1);
                    sizes.RemoveAt(sizes.Count - 1);
                }
                else
                {
                    int index = (int)random.Next((ulong)blocks.Count);
                    nuint newSize = (nuint)(1 + random.Next(99_999));
                    nuint moved = allocator.Reallocate(blocks[index], sizes[index], Align8, newSize);
                    if (moved == 0)
                    {
                        failedRounds++;
                        break;
                    }

                    liveBytes = liveBytes - sizes[index] + newSize;
                    blocks[index] = moved;
                    sizes[index] = newSize;
                }
            }

            efficiencySum += (double)liveBytes / HeapSize;
            for (int i = 0; i < blocks.Count; i++)
            {
                allocator.Free(blocks[i], sizes[i], Align8);
            }

            blocks.Clear();
            sizes.Clear();
        }

        return new Measurement(ops, Stopwatch.GetTimestamp() - start, failedRounds, rounds == 0 ? double.NaN : efficiencySum / rounds);
    }

    private static void FreeLive<T>(ref T allocator, nuint[] blocks, nuint[] sizes, int count)
        where T : struct, IBenchAllocator
    {
        for (int i = 0; i < count; i++)
        {
            if (blocks[i] != 0)
            {
                allocator.Free(blocks[i], sizes[i], (nuint)W3Stream.Align);
                blocks[i] = 0;
            }
        }
    }
}
