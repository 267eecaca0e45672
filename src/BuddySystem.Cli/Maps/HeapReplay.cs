using System.Globalization;
using BuddySystem.Cli.Bench;
using BuddySystem.Cli.Traces;

namespace BuddySystem.Cli.Maps;

/// <summary>
/// Replays trace lines or W3 operations on a real <see cref="BuddyHeap"/> (or <see cref="SlabHeap"/>), one at a time, so
/// a map or the explorer can look at the heap between any two operations.
/// </summary>
/// <remarks>
/// A failed allocation (null) is counted and its id is not live, so its later free is skipped, as a program that checks
/// malloc's result would do. A failed reallocation keeps the old block. The heap owns its memory; dispose the replay.
/// </remarks>
internal sealed unsafe class HeapReplay : IDisposable
{
    private readonly Dictionary<ulong, (nint Block, Layout Layout)> _byId = [];
    private readonly List<(nint Block, Layout Layout)> _w3Live = [];
    private readonly HashSet<ulong> _failedIds = [];

    private readonly IDisposable _owner;
    private readonly Func<Diagnostics.HeapSnapshot> _snapshot;

    public HeapReplay(ulong heapBytes, BuddyHeapOptions options)
    {
        BuddyHeap heap = BuddyHeap.Create((nuint)heapBytes, options);
        (Heap, _owner, _snapshot) = (heap, heap, () => Diagnostics.HeapSnapshot.Of(heap));
        BaseAddress = Snapshot().BaseAddress;
    }

    private HeapReplay(SlabHeap heap)
    {
        (Heap, _owner, _snapshot) = (heap, heap, () => Diagnostics.HeapSnapshot.Of(heap));
        BaseAddress = Snapshot().BaseAddress;
    }

    /// <summary>A replay on a <see cref="SlabHeap"/> of <paramref name="heapBytes"/> bytes.</summary>
    public static HeapReplay OnSlabHeap(ulong heapBytes) => new(SlabHeap.Create((nuint)heapBytes));

    public IAllocator Heap { get; }

    /// <summary>The heap's blocks now.</summary>
    public Diagnostics.HeapSnapshot Snapshot() => _snapshot();

    public ulong BaseAddress { get; }

    /// <summary>Bytes requested by the live blocks (what the program asked for, before rounding to block sizes).</summary>
    public ulong LiveBytes { get; private set; }

    public long FailedAllocations { get; private set; }

    public ReplayStep Apply(TraceOp op)
    {
        string id = op.Id.ToString(CultureInfo.InvariantCulture);
        switch (op.Kind)
        {
            case TraceOpKind.Allocate:
            {
                string text = string.Create(CultureInfo.InvariantCulture, $"a {id} {op.Size} {op.Align}");
                RequireSane(op);
                if (_byId.ContainsKey(op.Id))
                {
                    throw new InvalidDataException($"Trace line {op.Line}: id {id} is allocated while still live.");
                }

                var layout = new Layout((nuint)op.Size, (nuint)op.Align);
                void* block = Heap.Allocate(layout);
                if (block == null)
                {
                    FailedAllocations++;
                    _failedIds.Add(op.Id);
                    return new ReplayStep(text, null, op.Size, Failed: true, Skipped: false);
                }

                _failedIds.Remove(op.Id);
                _byId.Add(op.Id, ((nint)block, layout));
                LiveBytes += op.Size;
                return new ReplayStep(text, Offset(block), op.Size, false, false);
            }

            case TraceOpKind.Free:
            {
                string text = "f " + id;
                if (!_byId.Remove(op.Id, out (nint Block, Layout Layout) live))
                {
                    RequireFailedBefore(op);
                    _failedIds.Remove(op.Id);
                    return new ReplayStep(text, null, 0, false, Skipped: true);
                }

                Heap.Deallocate((void*)live.Block, live.Layout);
                LiveBytes -= live.Layout.Size;
                return new ReplayStep(text, Offset((void*)live.Block), live.Layout.Size, false, false);
            }

            default:
            {
                string text = string.Create(CultureInfo.InvariantCulture, $"r {id} {op.Size}");
                RequireSane(op);
                if (!_byId.TryGetValue(op.Id, out (nint Block, Layout Layout) live))
                {
                    RequireFailedBefore(op);
                    return new ReplayStep(text, null, op.Size, false, Skipped: true);
                }

                void* moved = Heap.Reallocate((void*)live.Block, live.Layout, (nuint)op.Size);
                if (moved == null)
                {
                    FailedAllocations++;
                    return new ReplayStep(text, Offset((void*)live.Block), op.Size, Failed: true, Skipped: false);
                }

                _byId[op.Id] = ((nint)moved, new Layout((nuint)op.Size, live.Layout.Align));
                LiveBytes = LiveBytes - live.Layout.Size + op.Size;
                return new ReplayStep(text, Offset(moved), op.Size, false, false);
            }
        }
    }

    /// <summary>Applies one W3 operation; a failed allocation takes its slot with no block, as the W3 contract says.</summary>
    public ReplayStep Apply(W3Op op)
    {
        if (op.IsAllocate)
        {
            var layout = new Layout((nuint)op.Size, (nuint)W3Stream.Align);
            void* block = Heap.Allocate(layout);
            string text = string.Create(CultureInfo.InvariantCulture, $"a #{op.Index} {op.Size} {W3Stream.Align}");
            _w3Live.Add(((nint)block, layout));
            if (block == null)
            {
                FailedAllocations++;
                return new ReplayStep(text, null, op.Size, Failed: true, Skipped: false);
            }

            LiveBytes += op.Size;
            return new ReplayStep(text, Offset(block), op.Size, false, false);
        }

        (nint freed, Layout freedLayout) = _w3Live[op.Index];
        _w3Live[op.Index] = _w3Live[^1];
        _w3Live.RemoveAt(_w3Live.Count - 1);
        string freeText = string.Create(CultureInfo.InvariantCulture, $"f #{op.Index}");
        if (freed == 0)
        {
            return new ReplayStep(freeText, null, 0, false, Skipped: true);
        }

        Heap.Deallocate((void*)freed, freedLayout);
        LiveBytes -= freedLayout.Size;
        return new ReplayStep(freeText, Offset((void*)freed), freedLayout.Size, false, false);
    }

    public void Dispose() => _owner.Dispose();

    // The bad-input rules of CompiledTrace: sizes no address space holds, and frees of ids that were never allocated.
    private static void RequireSane(TraceOp op)
    {
        if (op.Size > Replay.CompiledTrace.MaxRequestSize || op.Align > Replay.CompiledTrace.MaxRequestSize)
        {
            throw new TraceFormatException($"line {op.Line}: size {op.Size} or alignment {op.Align} is above {Replay.CompiledTrace.MaxRequestSize} (2^48), more than any address space holds");
        }
    }

    private void RequireFailedBefore(TraceOp op)
    {
        if (!_failedIds.Contains(op.Id))
        {
            throw new TraceFormatException($"line {op.Line}: '{(op.Kind == TraceOpKind.Free ? 'f' : 'r')}' names id {op.Id}, which is not live");
        }
    }

    private ulong Offset(void* block) => (ulong)block - BaseAddress;
}
