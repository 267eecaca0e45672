using System.Numerics;
using System.Text;
using System.Text.Json;
using BuddySystem.Cli.Replay;
using BuddySystem.Cli.Traces;
using BuddySystem.Diagnostics;

namespace BuddySystem.Cli.Maps;

/// <summary>
/// A trace prefix replayed on a real <see cref="BuddyHeap"/>, kept as the first heap's blocks plus one delta per step
/// (blocks removed, blocks added), so a page can replay it forwards and backwards without a copy of the heap per step.
/// Also keeps per-step live bytes, allocated bytes, largest free block, failures and U(j) for the charts.
/// </summary>
/// <remarks>
/// Each delta is the difference between two snapshots of the whole heap (a merge walk over two block lists sorted by
/// offset): exact for every heap mode, including the lazy caches, whose refills and flushes touch blocks far from the
/// block an operation returned. Costs O(blocks) per step.
/// </remarks>
internal sealed class ExploreRecording
{
    private readonly List<string> _operations = [];
    private readonly List<string> _notes = [];
    private readonly List<HeapBlock[]> _removed = [];
    private readonly List<HeapBlock[]> _added = [];
    private readonly List<ulong> _live = [];
    private readonly List<ulong> _allocated = [];
    private readonly List<ulong> _largest = [];
    private readonly List<long> _failed = [];
    private readonly List<int[]> _unusable = [];

    private ExploreRecording(string title, HeapSnapshot initial)
    {
        Title = title;
        Initial = initial;
    }

    public string Title { get; }

    public HeapSnapshot Initial { get; }

    /// <summary>Operations replayed: steps 1 to <see cref="Steps"/>; step 0 is the fresh heap.</summary>
    public int Steps => _operations.Count;

    public IReadOnlyList<string> Operations => _operations;

    public IReadOnlyList<HeapBlock[]> Removed => _removed;

    public IReadOnlyList<HeapBlock[]> Added => _added;

    /// <summary>Requested bytes of live blocks after each step (index 0 = before the first).</summary>
    public IReadOnlyList<ulong> LiveBytes => _live;

    public IReadOnlyList<ulong> AllocatedBytes => _allocated;

    public IReadOnlyList<ulong> LargestFreeBlock => _largest;

    public IReadOnlyList<long> FailedAllocations => _failed;

    /// <summary>Replays up to <paramref name="ops"/> operations of <paramref name="trace"/> on a new heap.</summary>
    /// <param name="inspect">Called after each step with the step number and the heap's snapshot (for tests).</param>
    public static ExploreRecording Record(IEnumerable<TraceOp> trace, string traceName, int ops, ulong heapBytes, BuddyHeapOptions options, Action<int, HeapSnapshot>? inspect = null)
    {
        ArgumentNullException.ThrowIfNull(trace);
        ArgumentOutOfRangeException.ThrowIfNegative(ops);
        using var replay = new TraceCursor(CompiledTrace.Compile(trace.Take(ops), traceName), heapBytes, options);
        HeapSnapshot before = HeapSnapshot.Of(replay.Heap);
        string mode = options.LazyCaches ? "lazy caches" : "eager";
        var recording = new ExploreRecording(string.Create(CultureInfo.InvariantCulture, $"{traceName} on a {ByteSize.Long(heapBytes)} BuddyHeap ({mode})"), before);
        recording.AddSeries(before, replay);
        inspect?.Invoke(0, before);
        while (!replay.AtEnd)
        {
            ReplayStep step = replay.Step();
            HeapSnapshot after = HeapSnapshot.Of(replay.Heap);
            (HeapBlock[] removed, HeapBlock[] added) = Diff(before.Blocks, after.Blocks);
            recording._operations.Add(step.Operation);
            recording._notes.Add(Note(step, removed, added));
            recording._removed.Add(removed);
            recording._added.Add(added);
            recording.AddSeries(after, replay);
            inspect?.Invoke(recording.Steps, after);
            before = after;
        }

        return recording;
    }

    /// <summary>Blocks only in <paramref name="before"/> (removed) and only in <paramref name="after"/> (added).</summary>
    internal static (HeapBlock[] Removed, HeapBlock[] Added) Diff(IReadOnlyList<HeapBlock> before, IReadOnlyList<HeapBlock> after)
    {
        var removed = new List<HeapBlock>();
        var added = new List<HeapBlock>();
        int i = 0;
        int j = 0;
        while (i < before.Count || j < after.Count)
        {
            if (j == after.Count || (i < before.Count && before[i].Offset < after[j].Offset))
            {
                removed.Add(before[i++]);
            }
            else if (i == before.Count || after[j].Offset < before[i].Offset)
            {
                added.Add(after[j++]);
            }
            else
            {
                if (before[i] != after[j])
                {
                    removed.Add(before[i]);
                    added.Add(after[j]);
                }

                i++;
                j++;
            }
        }

        return ([.. removed], [.. added]);
    }

    /// <summary>The recording as JSON for the page: numbers in flat arrays, blocks as (offset, order, state) triples.</summary>
    public string ToJson()
    {
        using var buffer = new MemoryStream();
        using (var json = new Utf8JsonWriter(buffer))
        {
            json.WriteStartObject();
            json.WriteString("title", Title);
            json.WriteNumber("span", BitOperations.RoundUpToPowerOf2(Math.Max(Initial.SpanBytes, Initial.MinBlockSize)));
            json.WriteNumber("total", Initial.TotalBytes);
            json.WriteNumber("minBlock", Initial.MinBlockSize);
            json.WriteNumber("orders", Initial.OrderCount);
            json.WriteStartArray("colors");
            foreach (BlockState state in Enum.GetValues<BlockState>())
            {
                json.WriteStartArray();
                for (int order = 0; order < Initial.OrderCount; order++)
                {
                    json.WriteStringValue(MapPalette.For(state, MapPalette.Shade(order, Initial.OrderCount)));
                }

                json.WriteEndArray();
            }

            json.WriteEndArray();
            WriteBlocks(json, "initial", Initial.Blocks);
            WriteStrings(json, "ops", _operations);
            WriteStrings(json, "notes", _notes);
            json.WriteStartArray("removed");
            foreach (HeapBlock[] blocks in _removed)
            {
                WriteBlocks(json, null, blocks);
            }

            json.WriteEndArray();
            json.WriteStartArray("added");
            foreach (HeapBlock[] blocks in _added)
            {
                WriteBlocks(json, null, blocks);
            }

            json.WriteEndArray();
            WriteNumbers(json, "live", _live);
            WriteNumbers(json, "allocated", _allocated);
            WriteNumbers(json, "largest", _largest);
            json.WriteStartArray("failed");
            foreach (long failed in _failed)
            {
                json.WriteNumberValue(failed);
            }

            json.WriteEndArray();
            json.WriteStartArray("unusable");
            foreach (int[] row in _unusable)
            {
                foreach (int value in row)
                {
                    json.WriteNumberValue(value);
                }
            }

            json.WriteEndArray();
            json.WriteEndObject();
        }

        return Encoding.UTF8.GetString(buffer.ToArray());
    }

    private void AddSeries(HeapSnapshot snapshot, TraceCursor replay)
    {
        _live.Add(replay.LiveBytes);
        _allocated.Add(snapshot.AllocatedBytes);
        _largest.Add(snapshot.LargestFreeBlock);
        _failed.Add(replay.FailedAllocations);
        var unusable = new int[snapshot.OrderCount];
        for (int order = 0; order < unusable.Length; order++)
        {
            // Thousandths, as Linux prints the index.
            unusable[order] = (int)Math.Round(snapshot.UnusableFreeIndex(order) * 1000);
        }

        _unusable.Add(unusable);
    }

    /// <summary>What the step did to the blocks, in words: "split: free 4 KiB → used 64 B + free 64 B, 128 B, …".</summary>
    private static string Note(ReplayStep step, HeapBlock[] removed, HeapBlock[] added)
    {
        if (step.Skipped)
        {
            return "skipped: the id is not live (its allocation failed earlier)";
        }

        if (step.Failed)
        {
            return "failed: no free block is large enough (null)";
        }

        if (removed.Length == 0 && added.Length == 0)
        {
            return step.Offset is ulong same ? string.Create(CultureInfo.InvariantCulture, $"block at +0x{same:x}; no block changed (the block already had room)") : "no block changed";
        }

        string verb = added.Length > removed.Length ? "split: " : added.Length < removed.Length ? "merge: " : string.Empty;
        string at = step.Offset is ulong offset ? string.Create(CultureInfo.InvariantCulture, $"block at +0x{offset:x}; ") : string.Empty;
        return at + verb + Describe(removed) + " → " + Describe(added);
    }

    private static string Describe(HeapBlock[] blocks)
    {
        const int shown = 6;
        var parts = new List<string>();
        BlockState? current = null;
        var sizes = new List<string>();
        foreach (HeapBlock block in blocks.Take(shown))
        {
            if (current != block.State && sizes.Count != 0)
            {
                parts.Add(Word(current!.Value) + " " + string.Join(", ", sizes));
                sizes.Clear();
            }

            current = block.State;
            sizes.Add(ByteSize.Long(block.Size));
        }

        if (sizes.Count != 0)
        {
            parts.Add(Word(current!.Value) + " " + string.Join(", ", sizes));
        }

        string more = blocks.Length > shown ? string.Create(CultureInfo.InvariantCulture, $" + {blocks.Length - shown} more") : string.Empty;
        return string.Join(" + ", parts) + more;
    }

    private static string Word(BlockState state) => state switch
    {
        BlockState.Allocated => "used",
        BlockState.Free => "free",
        BlockState.Cached => "cached",
        _ => "unknown",
    };

    private static void WriteBlocks(Utf8JsonWriter json, string? name, IEnumerable<HeapBlock> blocks)
    {
        if (name != null)
        {
            json.WriteStartArray(name);
        }
        else
        {
            json.WriteStartArray();
        }

        foreach (HeapBlock block in blocks)
        {
            json.WriteNumberValue(block.Offset);
            json.WriteNumberValue(block.Order);
            json.WriteNumberValue((int)block.State);
        }

        json.WriteEndArray();
    }

    private static void WriteStrings(Utf8JsonWriter json, string name, IEnumerable<string> values)
    {
        json.WriteStartArray(name);
        foreach (string value in values)
        {
            json.WriteStringValue(value);
        }

        json.WriteEndArray();
    }

    private static void WriteNumbers(Utf8JsonWriter json, string name, IEnumerable<ulong> values)
    {
        json.WriteStartArray(name);
        foreach (ulong value in values)
        {
            json.WriteNumberValue(value);
        }

        json.WriteEndArray();
    }
}
