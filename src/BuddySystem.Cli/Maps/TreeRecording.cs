using System.Text.Json;
using BuddySystem.Cli.Replay;
using BuddySystem.Cli.Traces;

namespace BuddySystem.Cli.Maps;

/// <summary>How a step changed one node of the seed's segment tree.</summary>
internal enum TreeRule : byte
{
    /// <summary>The chosen node was handed out: its value becomes 0.</summary>
    Taken,

    /// <summary>The freed node gets its wholly-free value back (its own order + 1).</summary>
    Restored,

    /// <summary>An ancestor became <c>max(left, right)</c>.</summary>
    Max,

    /// <summary>An ancestor whose children are both wholly free: the buddies merge (the seed's <c>ls.m + rs.m</c>).</summary>
    Merge,
}

/// <summary>One node whose value a step changed, and the rule that changed it.</summary>
/// <param name="Node">The node's heap index (root 1, children of i at 2i and 2i + 1).</param>
/// <param name="Before">Its value before: order + 1 of the largest free block below it, 0 for none.</param>
/// <param name="After">Its value after.</param>
/// <param name="Rule">Why it changed.</param>
internal readonly record struct TreeChange(int Node, byte Before, byte After, TreeRule Rule);

/// <summary>One allocation or free on the tree: the node it chose (the descended path is that node's ancestors) and every
/// node it changed, bottom-up; a failed allocation has node 0 and no changes.</summary>
/// <param name="Allocate">An allocation (true) or a free.</param>
/// <param name="Node">The chosen (or freed) node; 0 when the allocation failed.</param>
/// <param name="Order">The block's order.</param>
/// <param name="Offset">The block's offset.</param>
/// <param name="Changes">The changed nodes, from the chosen node up.</param>
internal sealed record TreeAction(bool Allocate, int Node, int Order, ulong Offset, IReadOnlyList<TreeChange> Changes);

/// <summary>
/// A trace prefix replayed on a real <see cref="BuddyTree"/> (the seed's segment tree), kept as the first tree's node bytes
/// plus, per step, the actions it took and the nodes they changed, so a page can step forwards and backwards and show the
/// path each allocation descended and the rule (max or merge) that changed every ancestor on the way back up.
/// </summary>
/// <remarks>The changes are read by diffing the node bytes along the chosen node's path before and after each call: the
/// tree changes no other node (an allocation walks down that path and back up it; so does a free).</remarks>
internal sealed class TreeRecording
{
    /// <summary>The largest tree the page draws: 2^16 leaves (the node array travels in the page).</summary>
    public const int MaxLeaves = 1 << 16;

    private readonly List<string> _operations = [];
    private readonly List<TreeAction[]> _actions = [];
    private readonly List<byte[]> _checkpoints = [];

    private readonly byte[] _before;

    private TreeRecording(string title, BuddyTree tree, byte[] initial)
    {
        _before = new byte[initial.Length];
        Title = title;
        Tree = tree;
        Initial = initial;
    }

    /// <summary>What the page calls the recording (the trace's name or "tutorial").</summary>
    public string Title { get; }

    /// <summary>The tree after the last step.</summary>
    public BuddyTree Tree { get; }

    /// <summary>The node bytes before the first step.</summary>
    public byte[] Initial { get; }

    /// <summary>The number of recorded steps (trace lines).</summary>
    public int Steps => _operations.Count;

    /// <summary>The trace line of each step.</summary>
    public IReadOnlyList<string> Operations => _operations;

    /// <summary>The actions of each step (a reallocation is an allocation and a free).</summary>
    public IReadOnlyList<TreeAction[]> Actions => _actions;

    /// <summary>The placement named on the command line: right-first, left-first or best-fit.</summary>
    public static BuddyPlacement ParsePlacement(string name) => name switch
    {
        "left-first" => BuddyPlacement.LeftFirst,
        "best-fit" => BuddyPlacement.BestFit,
        "right-first" => BuddyPlacement.RightFirst,
        _ => throw new ArgumentException($"unknown placement '{name}': right-first, left-first or best-fit.", nameof(name)),
    };

    // The tutorial's walk-through: three allocations, then their frees in the same order, the last merging to the root.
    private static readonly TraceOp[] s_tutorialOps =
    [
        new(TraceOpKind.Allocate, 1, 100, 16, 1),
        new(TraceOpKind.Allocate, 2, 40, 16, 2),
        new(TraceOpKind.Allocate, 3, 300, 16, 3),
        new(TraceOpKind.Free, 1, 0, 0, 4),
        new(TraceOpKind.Free, 2, 0, 0, 5),
        new(TraceOpKind.Free, 3, 0, 0, 6),
    ];

    private const ulong TutorialCapacity = 1024;
    private const ulong TutorialBlock = 16;

    /// <summary>The walk-through's steps in words, for <c>--help</c> and the README (a test holds the README to it):
    /// "allocate 100 B, allocate 40 B, allocate 300 B, free the 100 B, free the 40 B, free the 300 B, on 1 KiB of 16-byte
    /// blocks (64 leaves)".</summary>
    public static string TutorialSteps { get; } = string.Join(", ", s_tutorialOps.Select(op => op.Kind == TraceOpKind.Allocate
            ? $"allocate {op.Size} B"
            : $"free the {s_tutorialOps.First(a => a.Kind == TraceOpKind.Allocate && a.Id == op.Id).Size} B"))
        + string.Create(CultureInfo.InvariantCulture, $", on {ByteSize.Long(TutorialCapacity)} of {TutorialBlock}-byte blocks ({TutorialCapacity / TutorialBlock} leaves)");

    /// <summary>The built-in walk-through of the tutorial page (<see cref="TutorialSteps"/>), placing right first as the
    /// seed does unless told otherwise.</summary>
    public static TreeRecording Tutorial(BuddyPlacement placement = BuddyPlacement.RightFirst)
        => Record(s_tutorialOps, "tutorial", s_tutorialOps.Length, TutorialCapacity, TutorialBlock, placement);

    /// <summary>Replays up to <paramref name="maxOps"/> lines of <paramref name="ops"/> on a new tree.</summary>
    /// <param name="ops">The trace.</param>
    /// <param name="title">What the page calls it.</param>
    /// <param name="maxOps">How many lines to replay.</param>
    /// <param name="capacity">The tree's capacity in bytes.</param>
    /// <param name="minBlock">The smallest block (a leaf), a power of two.</param>
    /// <param name="placement">Which child an allocation descends into.</param>
    /// <exception cref="TraceFormatException">A line frees or reallocates an id that is not live, or allocates a live one.</exception>
    /// <exception cref="ArgumentOutOfRangeException">The tree would have more than <see cref="MaxLeaves"/> leaves.</exception>
    public static TreeRecording Record(IEnumerable<TraceOp> ops, string title, int maxOps, ulong capacity, ulong minBlock, BuddyPlacement placement)
    {
        ArgumentNullException.ThrowIfNull(ops);
        var tree = new BuddyTree(capacity, minBlock, placement);
        if (tree.LeafCount > MaxLeaves)
        {
            throw new ArgumentOutOfRangeException(nameof(capacity), $"{capacity} bytes of {minBlock}-byte blocks is {tree.LeafCount} leaves; the tree view draws at most {MaxLeaves}: use a smaller heap or a larger block.");
        }

        var recording = new TreeRecording(title, tree, tree.Nodes.ToArray());

        // The trace is checked by the replay's own compiler (dead ids, ids allocated twice, absurd sizes); a slot holds
        // the offset of its block, or nothing after a failed allocation, exactly as TraceReplayer's slots do.
        CompiledTrace trace = CompiledTrace.Compile(ops.Take(maxOps), title);
        var slots = new (ulong Offset, bool Live)[trace.Slots];
        foreach (TraceStep step in trace.Steps)
        {
            recording._operations.Add(Describe(step));
            recording._actions.Add(recording.Apply(step, slots));
        }

        return recording;
    }

    // The tree's side of TraceReplayer.Apply: the tree has no reallocate, so a reallocate allocates the new block and then
    // frees the old one (nothing changes on failure); a free or reallocate of an empty slot acts as the replay's does.
    private TreeAction[] Apply(in TraceStep step, (ulong Offset, bool Live)[] slots)
    {
        ref (ulong Offset, bool Live) slot = ref slots[step.Slot];
        switch (step.Kind)
        {
            case TraceOpKind.Allocate:
            {
                TreeAction allocation = AllocateOne(step.Size, step.Align);
                slot = (allocation.Offset, allocation.Node != 0);
                return [allocation];
            }

            case TraceOpKind.Free:
                if (!slot.Live)
                {
                    return [];
                }

                slot.Live = false;
                return [FreeOne(slot.Offset)];

            default:
            {
                TreeAction grown = AllocateOne(step.Size, step.Align);
                if (grown.Node == 0)
                {
                    return [grown];
                }

                ulong old = slot.Offset;
                bool wasLive = slot.Live;
                slot = (grown.Offset, true);
                return wasLive ? [grown, FreeOne(old)] : [grown];
            }
        }
    }

    private TreeAction AllocateOne(ulong size, ulong align)
    {
        // The chosen node is known only afterwards, so keep the whole tree (at most 2^17 bytes) to read its path before.
        Tree.Nodes.CopyTo(_before);
        if (!Tree.TryAllocate(size, Math.Max(align, 1), out ulong offset))
        {
            ulong wanted = Tree.BlockSizeFor(size, Math.Max(align, 1));
            return new TreeAction(true, 0, wanted == 0 ? 64 : (int)ulong.Log2(wanted / Tree.MinBlockSize), 0, []);
        }

        int order = (int)ulong.Log2(Tree.SizeOf(offset) / Tree.MinBlockSize);
        return Diff(true, offset, order, PathValues(_before, NodeOf(offset, order)));
    }

    private TreeAction FreeOne(ulong offset)
    {
        int order = (int)ulong.Log2(Tree.SizeOf(offset) / Tree.MinBlockSize);
        byte[] before = PathValues(Tree.Nodes, NodeOf(offset, order));
        Tree.Free(offset);
        return Diff(false, offset, order, before);
    }

    private TreeAction Diff(bool allocate, ulong offset, int order, byte[] before)
    {
        int node = NodeOf(offset, order);
        byte[] after = PathValues(Tree.Nodes, node);
        var changes = new List<TreeChange>();
        ReadOnlySpan<byte> nodes = Tree.Nodes;
        for (int i = 0, index = node, level = order; index >= 1; i++, index >>= 1, level++)
        {
            if (before[i] == after[i])
            {
                continue;
            }

            TreeRule rule = index == node
                ? (allocate ? TreeRule.Taken : TreeRule.Restored)
                : nodes[2 * index] == level && nodes[(2 * index) + 1] == level ? TreeRule.Merge : TreeRule.Max;
            changes.Add(new TreeChange(index, before[i], after[i], rule));
        }

        return new TreeAction(allocate, node, order, offset, changes);
    }

    private static byte[] PathValues(ReadOnlySpan<byte> nodes, int node)
    {
        var values = new List<byte>();
        for (int index = node; index >= 1; index >>= 1)
        {
            values.Add(nodes[index]);
        }

        return [.. values];
    }

    private int NodeOf(ulong offset, int order) => (int)((Tree.LeafCount >> order) + (offset / (Tree.MinBlockSize << order)));

    /// <summary>The node bytes after step <paramref name="step"/> (0 = before the first), rebuilt from the changes.</summary>
    public byte[] NodesAt(int step)
    {
        byte[] nodes = (byte[])Initial.Clone();
        for (int s = 0; s < step; s++)
        {
            foreach (TreeAction action in _actions[s])
            {
                foreach (TreeChange change in action.Changes)
                {
                    nodes[change.Node] = change.After;
                }
            }
        }

        return nodes;
    }

    private static string Describe(in TraceStep op) => op.Kind switch
    {
        TraceOpKind.Allocate => string.Create(CultureInfo.InvariantCulture, $"a {op.Id} {op.Size} {op.Align}"),
        TraceOpKind.Free => string.Create(CultureInfo.InvariantCulture, $"f {op.Id}"),
        _ => string.Create(CultureInfo.InvariantCulture, $"r {op.Id} {op.Size}"),
    };

    /// <summary>The recording as the JSON the tree page reads.</summary>
    public string ToJson()
    {
        using var buffer = new MemoryStream();
        using (var json = new Utf8JsonWriter(buffer))
        {
            json.WriteStartObject();
            json.WriteString("title", Title);
            json.WriteNumber("capacity", Tree.Capacity);
            json.WriteNumber("minBlock", Tree.MinBlockSize);
            json.WriteNumber("rootOrder", Tree.RootOrder);
            json.WriteString("placement", Tree.Placement.ToString());
            json.WriteBase64String("nodes", Initial);
            json.WriteStartArray("ops");
            foreach (string op in _operations)
            {
                json.WriteStringValue(op);
            }

            json.WriteEndArray();
            json.WriteStartArray("steps");
            foreach (TreeAction[] step in _actions)
            {
                json.WriteStartArray();
                foreach (TreeAction action in step)
                {
                    // [allocate 1/0, node, order, offset, [node, before, after, rule]...]
                    json.WriteStartArray();
                    json.WriteNumberValue(action.Allocate ? 1 : 0);
                    json.WriteNumberValue(action.Node);
                    json.WriteNumberValue(action.Order);
                    json.WriteNumberValue(action.Offset);
                    foreach (TreeChange change in action.Changes)
                    {
                        json.WriteNumberValue(change.Node);
                        json.WriteNumberValue(change.Before);
                        json.WriteNumberValue(change.After);
                        json.WriteNumberValue((int)change.Rule);
                    }

                    json.WriteEndArray();
                }

                json.WriteEndArray();
            }

            json.WriteEndArray();
            json.WriteEndObject();
        }

        return System.Text.Encoding.UTF8.GetString(buffer.ToArray());
    }
}
