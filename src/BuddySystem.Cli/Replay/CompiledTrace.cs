using System.Numerics;
using BuddySystem.Cli.Traces;

namespace BuddySystem.Cli.Replay;

/// <summary>
/// A trace read once and checked (every free and reallocate names a live id, no live id is allocated twice), with ids
/// mapped to slots and the peaks that size the default heap.
/// </summary>
internal sealed class CompiledTrace
{
    private CompiledTrace(string source, TraceStep[] steps, int slots, ulong peakUserBytes, ulong peakBlockBytes)
    {
        Source = source;
        Steps = steps;
        Slots = slots;
        PeakUserBytes = peakUserBytes;
        PeakBuddyBlockBytes = peakBlockBytes;
    }

    /// <summary>Where the trace came from (file name), for messages.</summary>
    public string Source { get; }

    /// <summary>The operations in order.</summary>
    public TraceStep[] Steps { get; }

    /// <summary>The number of slots: the peak count of live blocks.</summary>
    public int Slots { get; }

    /// <summary>The peak of live requested bytes over the trace.</summary>
    public ulong PeakUserBytes { get; }

    /// <summary>The peak of live bytes if every request got a buddy block (max(next power of two, align, 16)).</summary>
    public ulong PeakBuddyBlockBytes { get; }

    /// <summary>
    /// The default arena size: the next power of two of twice <see cref="PeakBuddyBlockBytes"/>, at least 1 MiB. Buddy
    /// blocks already include internal fragmentation (up to 2×); the second factor of two leaves room for external
    /// fragmentation (free blocks that cannot merge). Failed allocations are still counted and reported, never hidden.
    /// </summary>
    /// <remarks>Capped at <see cref="MaxDefaultHeapSize"/> (1 GiB): a larger arena must be asked for with --heap.</remarks>
    public ulong DefaultHeapSize => PeakBuddyBlockBytes >= MaxDefaultHeapSize / 2
        ? MaxDefaultHeapSize
        : Math.Max(1UL << 20, BitOperations.RoundUpToPowerOf2(Math.Max(PeakBuddyBlockBytes, 1) * 2));

    /// <summary>The largest arena the default picks (the pages of the arena are touched before replay).</summary>
    public const ulong MaxDefaultHeapSize = 1UL << 30;

    /// <summary>
    /// Sizes and alignments above this (256 TiB, beyond any x64 address space) are rejected as bad input when the trace
    /// is compiled: no allocator could serve them, and some allocators' layout checks would throw on sizes near 2^64.
    /// </summary>
    public const ulong MaxRequestSize = 1UL << 48;

    /// <summary>Reads and checks a trace; semantic errors throw <see cref="TraceFormatException"/> naming the line.</summary>
    /// <param name="ops">The trace's operations (from <see cref="TraceReader"/>).</param>
    /// <param name="source">The trace's name, for errors.</param>
    /// <param name="progress">Called now and then with the number of operations read so far.</param>
    public static CompiledTrace Compile(IEnumerable<TraceOp> ops, string source, Action<long>? progress = null)
    {
        var steps = new List<TraceStep>();
        var live = new Dictionary<ulong, (int Slot, ulong Size, ulong Align, long Line)>();
        var freeSlots = new Stack<int>();
        int slots = 0;
        ulong userBytes = 0, blockBytes = 0, peakUser = 0, peakBlock = 0;
        foreach (TraceOp op in ops)
        {
            if (op.Kind != TraceOpKind.Free && (op.Size > MaxRequestSize || op.Align > MaxRequestSize))
            {
                throw new TraceFormatException(source, op.Line, $"size {op.Size} or alignment {op.Align} is above {MaxRequestSize} (2^48), more than any address space holds");
            }

            switch (op.Kind)
            {
                case TraceOpKind.Allocate:
                    if (live.TryGetValue(op.Id, out var existing))
                    {
                        throw new TraceFormatException(source, op.Line, $"id {op.Id} is allocated again while live (allocated at line {existing.Line})");
                    }

                    int slot = freeSlots.Count > 0 ? freeSlots.Pop() : slots++;
                    live[op.Id] = (slot, op.Size, op.Align, op.Line);
                    steps.Add(new TraceStep(op.Kind, slot, op.Id, (nuint)op.Size, (nuint)op.Align, op.Line));
                    userBytes = SaturatingAdd(userBytes, op.Size);
                    blockBytes = SaturatingAdd(blockBytes, BuddyBlock(op.Size, op.Align));
                    break;

                case TraceOpKind.Free:
                {
                    var block = Live(live, op, source);
                    live.Remove(op.Id);
                    freeSlots.Push(block.Slot);
                    steps.Add(new TraceStep(op.Kind, block.Slot, op.Id, 0, (nuint)block.Align, op.Line));
                    userBytes -= block.Size;
                    blockBytes -= BuddyBlock(block.Size, block.Align);
                    break;
                }

                default:
                {
                    var block = Live(live, op, source);
                    live[op.Id] = (block.Slot, op.Size, block.Align, block.Line);
                    steps.Add(new TraceStep(op.Kind, block.Slot, op.Id, (nuint)op.Size, (nuint)block.Align, op.Line));
                    userBytes = SaturatingAdd(userBytes - block.Size, op.Size);
                    blockBytes = SaturatingAdd(blockBytes - BuddyBlock(block.Size, block.Align), BuddyBlock(op.Size, block.Align));
                    break;
                }
            }

            peakUser = Math.Max(peakUser, userBytes);
            peakBlock = Math.Max(peakBlock, blockBytes);
            if ((steps.Count & 0xFFFF) == 0)
            {
                progress?.Invoke(steps.Count);
            }
        }

        progress?.Invoke(steps.Count);
        return new CompiledTrace(source, [.. steps], slots, peakUser, peakBlock);
    }

    private static (int Slot, ulong Size, ulong Align, long Line) Live(Dictionary<ulong, (int Slot, ulong Size, ulong Align, long Line)> live, TraceOp op, string source)
    {
        if (!live.TryGetValue(op.Id, out var block))
        {
            string verb = op.Kind == TraceOpKind.Free ? "frees" : "reallocates";
            throw new TraceFormatException(source, op.Line, $"'{(op.Kind == TraceOpKind.Free ? 'f' : 'r')}' {verb} id {op.Id}, which is not live");
        }

        return block;
    }

    // Absurd traces (sizes near 2^64) must not wrap the peaks round to small numbers.
    private static ulong SaturatingAdd(ulong a, ulong b) => a > ulong.MaxValue - b ? ulong.MaxValue : a + b;

    // Sizes are capped at MaxRequestSize when read, so every request has a buddy block.
    private static ulong BuddyBlock(ulong size, ulong align) => BuddyHeap.BlockSizeOf(new Layout((nuint)size, (nuint)align));
}
