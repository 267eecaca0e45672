using BuddySystem.Cli.Traces;

namespace BuddySystem.Cli.Bench;

/// <summary>
/// The operation stream of workload W3 (docs/benchmarks.md), reusable by <c>buddy bench</c> (W3, W5) and by anything that
/// replays a prefix of it (<c>buddy map --workload W3 --ops N</c>).
/// </summary>
/// <remarks>
/// Seed 0x5EED; the live count is capped at <see cref="LiveCap"/> (10 000): with none live, allocate; with the cap
/// live, free; otherwise <c>next() % 2 == 0</c> allocates. An allocation draws e = 3 + next() % 13 and
/// size = 2^e + next() % 2^e (align 8). A free draws idx = next() % live and swap-removes it.
/// <para>The stream counts live blocks itself, independent of what an allocator answers: a failed allocation still
/// takes its slot (the consumer records a null block there and skips its free), so every allocator sees the same
/// operations in the same order.</para>
/// </remarks>
internal struct W3Stream
{
    /// <summary>The seed docs/benchmarks.md fixes for W3.</summary>
    public const ulong DefaultSeed = 0x5EED;

    /// <summary>The live-set cap of W3.</summary>
    public const int LiveCap = 10_000;

    /// <summary>The number of operations of a full W3 run.</summary>
    public const int DefaultOperations = 2_000_000;

    /// <summary>The alignment of every W3 allocation.</summary>
    public const ulong Align = 8;

    private SplitMix64 _random;
    private int _live;

    /// <summary>Starts the stream at <paramref name="seed"/> (W5 gives thread t the seed 0x5EED + t).</summary>
    public W3Stream(ulong seed)
    {
        _random = new SplitMix64(seed);
        _live = 0;
    }

    /// <summary>Blocks live after the operations drawn so far.</summary>
    public readonly int Live => _live;

    /// <summary>Draws the next operation and updates the live count.</summary>
    public W3Op Next()
    {
        bool allocate = _live == 0 || (_live < LiveCap && _random.Next() % 2 == 0);
        if (allocate)
        {
            int exponent = 3 + (int)_random.Next(13);
            ulong power = 1UL << exponent;
            ulong size = power + _random.Next(power);
            return new W3Op(true, _live++, size);
        }

        int index = (int)_random.Next((ulong)_live);
        _live--;
        return new W3Op(false, index, 0);
    }

    /// <summary>
    /// The stream as trace operations, so a W3 prefix replays like any trace (<c>buddy map --workload W3</c>): allocation
    /// n takes id n, and a free names the id at its index of the live list (which then swap-removes it). Endless: take a prefix.
    /// </summary>
    public static IEnumerable<TraceOp> AsTrace(ulong seed = DefaultSeed)
    {
        var stream = new W3Stream(seed);
        var live = new List<ulong>();
        ulong nextId = 1;
        for (long line = 1; ; line++)
        {
            W3Op op = stream.Next();
            if (op.IsAllocate)
            {
                live.Add(nextId);
                yield return new TraceOp(TraceOpKind.Allocate, nextId++, op.Size, Align, line);
                continue;
            }

            ulong id = live[op.Index];
            live[op.Index] = live[^1];
            live.RemoveAt(live.Count - 1);
            yield return new TraceOp(TraceOpKind.Free, id, 0, 0, line);
        }
    }
}
