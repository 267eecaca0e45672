using BuddySystem.Cli.Bench;
using BuddySystem.Cli.Maps;
using BuddySystem.Cli.Traces;
using BuddySystem.Diagnostics;

namespace BuddySystem.Cli.Replay;

/// <summary>
/// A <see cref="CompiledTrace"/> replayed one step at a time on a <see cref="BuddyHeap"/>, so <c>buddy map</c> and
/// <c>buddy explore</c> can look at the heap between any two operations. The trace was checked when it was compiled
/// (dead ids, absurd sizes: the same rules as <c>buddy replay</c>), and every step follows
/// <see cref="TraceReplayer.Apply"/>, the replay's own rule, through the heap's <see cref="HeapTarget"/>.
/// </summary>
/// <remarks>The cursor owns its heap; dispose it.</remarks>
internal sealed class TraceCursor : IDisposable
{
    private readonly CompiledTrace _trace;
    private readonly nuint[] _blocks;
    private readonly nuint[] _sizes;
    private readonly BuddyHeap? _heap;
    private readonly HeapTarget _target;
    private TargetAllocator<InterfaceCalls> _allocator;
    private int _next;

    /// <summary>Starts before the first step of <paramref name="trace"/> on a new heap of <paramref name="heapBytes"/>.</summary>
    public TraceCursor(CompiledTrace trace, ulong heapBytes, BuddyHeapOptions options)
        : this(trace, BuddyHeap.Create((nuint)heapBytes, options))
    {
    }

    private TraceCursor(CompiledTrace trace, BuddyHeap heap)
        : this(trace, HeapTarget.Of("buddy-heap", heap))
    {
        _heap = heap;
    }

    private TraceCursor(CompiledTrace trace, HeapTarget target)
    {
        _trace = trace;
        _blocks = new nuint[trace.Slots];
        _sizes = new nuint[trace.Slots];
        _target = target;
        _allocator = TargetAllocator.Of(target);
        BaseAddress = target.Snapshot().BaseAddress;
    }

    /// <summary>A cursor on <paramref name="target"/>, a registry engine that lists its blocks
    /// (<see cref="HeapTarget.CanSnapshot"/>: for <c>buddy map -a</c>); the cursor disposes it.</summary>
    /// <exception cref="ArgumentException">The engine cannot list its blocks.</exception>
    public static TraceCursor On(CompiledTrace trace, HeapTarget target)
        => target.CanSnapshot ? new TraceCursor(trace, target) : throw new ArgumentException($"{target.Name} cannot list its blocks.", nameof(target));

    /// <summary>The buddy heap the steps run on.</summary>
    /// <exception cref="InvalidOperationException">The cursor runs on another engine (use <see cref="Snapshot"/>).</exception>
    public BuddyHeap Heap => _heap ?? throw new InvalidOperationException($"this cursor runs on {_target.Name}, not on a BuddyHeap of its own.");

    /// <summary>The class of the engine the steps run on (<c>SlabHeap</c>, <c>ConcurrentHeap</c>, ...).</summary>
    public string EngineType => _target.Allocator.GetType().Name;

    /// <summary>The heap's blocks now.</summary>
    public HeapSnapshot Snapshot() => _target.Snapshot();

    /// <summary>The address offsets are counted from (the heap's first block).</summary>
    public ulong BaseAddress { get; }

    /// <summary>Whether every step has been applied.</summary>
    public bool AtEnd => _next == _trace.Steps.Length;

    /// <summary>Steps applied so far.</summary>
    public int Done => _next;

    /// <summary>Bytes requested by the live blocks (what the program asked for, before rounding to block sizes).</summary>
    public ulong LiveBytes { get; private set; }

    /// <summary>Allocations and reallocations that returned null so far.</summary>
    public long FailedAllocations { get; private set; }

    /// <summary>Applies the next step and says what it did.</summary>
    /// <exception cref="InvalidOperationException">Every step has been applied.</exception>
    public ReplayStep Step()
    {
        if (AtEnd)
        {
            throw new InvalidOperationException("the trace has no more steps.");
        }

        TraceStep step = _trace.Steps[_next++];
        nuint old = _blocks[step.Slot];
        nuint oldSize = _sizes[step.Slot];
        bool served = TraceReplayer.Apply(ref _allocator, in step, _blocks, _sizes);
        nuint block = _blocks[step.Slot];
        string id = step.Id.ToString(CultureInfo.InvariantCulture);
        switch (step.Kind)
        {
            case TraceOpKind.Allocate:
            {
                string text = string.Create(CultureInfo.InvariantCulture, $"a {id} {step.Size} {step.Align}");
                if (!served)
                {
                    FailedAllocations++;
                    return new ReplayStep(text, null, step.Size, Failed: true, Skipped: false);
                }

                LiveBytes += step.Size;
                return new ReplayStep(text, Offset(block), step.Size, Failed: false, Skipped: false);
            }

            case TraceOpKind.Free:
                if (old == 0)
                {
                    return new ReplayStep("f " + id, null, 0, Failed: false, Skipped: true);
                }

                LiveBytes -= oldSize;
                return new ReplayStep("f " + id, Offset(old), oldSize, Failed: false, Skipped: false);

            default:
            {
                string text = string.Create(CultureInfo.InvariantCulture, $"r {id} {step.Size}");
                if (!served)
                {
                    FailedAllocations++;
                    return new ReplayStep(text, old == 0 ? null : Offset(old), step.Size, Failed: true, Skipped: false);
                }

                LiveBytes = LiveBytes - (old == 0 ? 0 : oldSize) + step.Size;
                return new ReplayStep(text, Offset(block), step.Size, Failed: false, Skipped: false);
            }
        }
    }

    /// <summary>Applies every remaining step.</summary>
    public void StepToEnd()
    {
        while (!AtEnd)
        {
            Step();
        }
    }

    /// <inheritdoc/>
    public void Dispose() => _allocator.Dispose();

    private ulong Offset(nuint block) => block - BaseAddress;
}
