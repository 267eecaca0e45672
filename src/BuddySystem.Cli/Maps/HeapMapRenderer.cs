using System.Numerics;
using BuddySystem.Diagnostics;

namespace BuddySystem.Cli.Maps;

/// <summary>
/// Lays out a picture of a <see cref="HeapSnapshot"/>: the buddy tree's top orders as an icicle, the memory map as a
/// strip wrapped into rows (a power-of-two number of bytes per row, so every block fits a row or whole rows), the
/// buddyinfo row and Linux's fragmentation indices per order. Readable from a 64-byte heap to a 1 GiB one: blocks
/// narrower than a pixel are aggregated and the picture says so.
/// </summary>
internal static class HeapMapRenderer
{
    private const double Width = 1200;
    private const double StripX = 136;
    private const double StripWidth = 1024;
    private const double LabelX = StripX - 8;
    private const int MaxRows = 64;
    private const int MaxTreeLevels = 10;
    private const double MinTreeNodeWidth = 3;

    /// <summary>Draws <paramref name="snapshot"/>; with <paramref name="tree"/> (the tree the snapshot was taken of), the
    /// band at the top is the seed's segment tree itself, each node with its stored value, instead of the block icicle.</summary>
    public static MapScene Render(HeapSnapshot snapshot, string source, string? command = null, BuddyTree? tree = null)
    {
        ArgumentNullException.ThrowIfNull(snapshot);
        var scene = new MapScene(Width);
        if (snapshot.Blocks.Count == 0)
        {
            scene.Text(20, 34, $"Buddy heap map: {source}", 20, MapPalette.Text, bold: true);
            scene.Text(20, 60, "The heap has no regions: nothing to draw.", 13, MapPalette.Muted);
            scene.Height = 80;
            return scene;
        }

        ulong span = BitOperations.RoundUpToPowerOf2(Math.Max(snapshot.SpanBytes, snapshot.MinBlockSize));
        double y = Header(scene, snapshot, source, span);
        y = tree != null ? SegmentTree(scene, snapshot, tree, y + 30) : Tree(scene, snapshot, span, y + 30);
        y = Strip(scene, snapshot, span, y + 34);
        y = Indices(scene, snapshot, y + 38);
        if (command != null)
        {
            scene.Text(20, y + 24, $"made by: {command}", 11, MapPalette.Muted);
            y += 24;
        }

        scene.Height = y + 16;
        return scene;
    }

    private static double Header(MapScene scene, HeapSnapshot snapshot, string source, ulong span)
    {
        scene.Text(20, 34, $"Buddy heap map: {source}", 20, MapPalette.Text, bold: true);
        string cached = snapshot.CachedBytes == 0 ? string.Empty
            : snapshot.Slabs.Count != 0 ? $" ({ByteSize.Long(snapshot.CachedBytes)} of it inside {Count(snapshot.Slabs.Count, "slab")})"
            : $" ({ByteSize.Long(snapshot.CachedBytes)} of it cached)";
        scene.Text(20, 58, $"{ByteSize.Long(snapshot.TotalBytes)} managed in {Count(snapshot.Blocks.Count, "block")} · allocated {ByteSize.Long(snapshot.AllocatedBytes)} in {Count(snapshot.LiveBlocks, "block")} · free {ByteSize.Long(snapshot.FreeBytes)}{cached}, largest free block {ByteSize.Long(snapshot.LargestFreeBlock)}", 13, MapPalette.Text);
        int top = snapshot.OrderCount - 1;
        scene.Text(20, 76, $"A block of order k holds {ByteSize.Long(snapshot.MinBlockSize)} × 2^k bytes (here order 0 = {ByteSize.Long(snapshot.MinBlockSize)} … order {top} = {ByteSize.Long(snapshot.MinBlockSize << top)}), starts at a multiple of its size, and its buddy is at offset XOR size.", 12, MapPalette.Muted);

        // The slabs' line apart: beside the summary it ran past the picture's right edge.
        double legendY = 100;
        if (snapshot.Slabs.Count != 0)
        {
            scene.Text(20, 94, "A slab is a buddy block cut into objects of one size class; its free objects are free for that class only.", 12, MapPalette.Muted);
            legendY += 18;
        }

        // Legend: one swatch per state present (allocated and free always), then the order shading.
        double x = 20;
        foreach (BlockState state in new[] { BlockState.Allocated, BlockState.Free, BlockState.Cached, BlockState.Unknown })
        {
            bool present = state switch
            {
                BlockState.Cached => snapshot.CachedBytes != 0,
                BlockState.Unknown => snapshot.UnknownBytes != 0,
                _ => true,
            };
            if (present)
            {
                // In a slab heap the "cached" bytes are a slab's free objects and unused tail: free, for its class only.
                string name = state == BlockState.Cached && snapshot.Slabs.Count != 0 ? "free in a slab (its class only)" : MapPalette.Name(state);
                scene.Rect(x, legendY - 11, 14, 14, MapPalette.For(state, 0.35));
                scene.Text(x + 20, legendY, name, 12, MapPalette.Text);
                x += 32 + (7.2 * name.Length);
            }
        }

        if (snapshot.SpanBytes < span || snapshot.SpanBytes > snapshot.TotalBytes)
        {
            scene.Rect(x, legendY - 11, 14, 14, MapPalette.Unmanaged, MapPalette.Grid, 0.5);
            scene.Text(x + 20, legendY, "not managed", 12, MapPalette.Text);
            x += 120;
        }

        scene.Text(x + 10, legendY, "shade = order:", 12, MapPalette.Text);
        x += 104;
        const int steps = 8;
        for (int i = 0; i < steps; i++)
        {
            scene.Rect(x + (i * 14), legendY - 11, 14, 14, MapPalette.For(BlockState.Free, i / (double)(steps - 1)));
            scene.Rect(x + (i * 14), legendY + 3, 14, 5, MapPalette.For(BlockState.Allocated, i / (double)(steps - 1)));
        }

        scene.Text(x + (steps * 14) + 6, legendY, "dark = small blocks, light = large blocks", 12, MapPalette.Text);
        return legendY + 8;
    }

    /// <summary>How many of <paramref name="totalLevels"/> tree levels the band draws: at most <see cref="MaxTreeLevels"/>,
    /// and none whose nodes would be narrower than <see cref="MinTreeNodeWidth"/>.</summary>
    private static int DrawnLevels(int totalLevels)
    {
        int levels = 0;
        while (levels < totalLevels && levels < MaxTreeLevels && StripWidth / (1 << levels) >= MinTreeNodeWidth)
        {
            levels++;
        }

        return levels;
    }

    /// <summary>The heading both trees share: the title, one line on how to read the tree, and the label over the size
    /// column. Returns the top of the first row.</summary>
    private static double TreeHeading(MapScene scene, double y, string title, string reading, string sizeLabel)
    {
        scene.Text(20, y, title, 14, MapPalette.Text, bold: true);
        scene.Text(20, y + 17, reading, 12, MapPalette.Muted);
        y += 28;
        scene.Text(LabelX, y - 2, sizeLabel, 10, MapPalette.Muted, MapTextAnchor.End);
        return y;
    }

    /// <summary>The buddy tree as an icicle: row L holds the nodes of size span / 2^L.</summary>
    private static double Tree(MapScene scene, HeapSnapshot snapshot, ulong span, double y)
    {
        int totalLevels = BitOperations.Log2(span) - BitOperations.Log2(snapshot.MinBlockSize) + 1;
        int levels = DrawnLevels(totalLevels);

        string extent = levels == totalLevels ? $"all {totalLevels} orders" : $"the top {levels} of {totalLevels} orders (smaller blocks show in the memory map below)";
        y = TreeHeading(scene, y, $"Buddy tree, {extent}", "Each row is one block size. A coloured node is a block; a grey node was split into two buddies (left half = lower address); nothing is drawn inside a block.", "block size");
        const double rowHeight = 16;
        const double rowGap = 3;
        for (int level = 0; level < levels; level++)
        {
            ulong nodeSize = span >> level;
            double nodeWidth = StripWidth / (1 << level);
            double rowY = y + (level * (rowHeight + rowGap)) + 2;
            int order = BitOperations.Log2(nodeSize) - BitOperations.Log2(snapshot.MinBlockSize);
            scene.Text(LabelX, rowY + 12, $"{ByteSize.Long(nodeSize)} · order {order}", 10, MapPalette.Muted, MapTextAnchor.End);
            for (ulong node = 0; node < (1UL << level); node++)
            {
                ulong start = node * nodeSize;
                double x = StripX + (node * nodeWidth);
                switch (Classify(snapshot, start, nodeSize, out HeapBlock block))
                {
                    case NodeKind.Block:
                        double shade = MapPalette.Shade(block.Order, snapshot.OrderCount);
                        scene.Rect(x, rowY, Math.Max(nodeWidth - 1, 1), rowHeight, MapPalette.For(block.State, shade));
                        if (nodeWidth >= 44)
                        {
                            scene.Text(x + (nodeWidth / 2), rowY + 12, ByteSize.Short(nodeSize), 10, MapPalette.LabelOn(shade), MapTextAnchor.Middle);
                        }

                        break;
                    case NodeKind.Split:
                        scene.Rect(x, rowY, Math.Max(nodeWidth - 1, 1), rowHeight, MapPalette.Split, MapPalette.Grid, 0.5);
                        break;
                    default:
                        break;
                }
            }
        }

        return y + (levels * (rowHeight + rowGap));
    }

    /// <summary>The seed's segment tree, node by node: row L holds the 2^L nodes of that level, each coloured by what its
    /// stored value says (wholly free, partly free, allocated, nothing free) and, where it is wide enough, labelled with the
    /// value and the block size it stands for.</summary>
    private static double SegmentTree(MapScene scene, HeapSnapshot snapshot, BuddyTree tree, double y)
    {
        ReadOnlySpan<byte> nodes = tree.Nodes;
        int totalLevels = tree.RootOrder + 1;
        int levels = DrawnLevels(totalLevels);

        string extent = levels == totalLevels ? $"all {totalLevels} levels" : $"the top {levels} of {totalLevels} levels";
        y = TreeHeading(scene, y, $"Segment tree (the seed's {tree.Placement} BuddyTree), {extent}", "Each node stores order + 1 of the largest block still free below it (0 = none); a parent is max(left, right), or its own whole size when both halves are wholly free (the merge).", "node size");
        const double rowHeight = 18;
        const double rowGap = 3;
        var inside = new bool[1 << levels];
        for (int level = 0; level < levels; level++)
        {
            int order = tree.RootOrder - level;
            ulong nodeSize = tree.MinBlockSize << order;
            double nodeWidth = StripWidth / (1 << level);
            double rowY = y + (level * (rowHeight + rowGap)) + 2;
            scene.Text(LabelX, rowY + 13, $"{ByteSize.Long(nodeSize)} · order {order}", 10, MapPalette.Muted, MapTextAnchor.End);
            double shade = MapPalette.Shade(order, snapshot.OrderCount);
            for (int node = 0; node < (1 << level); node++)
            {
                int index = (1 << level) + node;
                byte value = nodes[index];
                bool beyond = (ulong)node * nodeSize >= tree.Capacity;
                // Below an allocated node the children keep the values they had when it was free; they are inside a block.
                inside[index] = level > 0 && (inside[index >> 1] || BuddyTree.IsAllocatedNode(nodes, index >> 1, order + 1));
                string fill = beyond ? MapPalette.Unmanaged
                    : inside[index] ? MapPalette.For(BlockState.Allocated, 0.92)
                    : value == order + 1 ? MapPalette.For(BlockState.Free, shade)
                    : BuddyTree.IsAllocatedNode(nodes, index, order) ? MapPalette.For(BlockState.Allocated, shade)
                    : value == 0 ? MapPalette.Split
                    : MapPalette.For(BlockState.Free, 0.9);
                double x = StripX + (node * nodeWidth);
                scene.Rect(x, rowY, Math.Max(nodeWidth - 1, 1), rowHeight, fill, MapPalette.Grid, 0.5);
                if (nodeWidth >= 14 && !beyond)
                {
                    string label = nodeWidth >= 70 && value > 0 ? $"{value} · {ByteSize.Short(tree.MinBlockSize << (value - 1))}" : value.ToString(CultureInfo.InvariantCulture);
                    scene.Text(x + (nodeWidth / 2), rowY + 13, label, 10, inside[index] ? MapPalette.Muted : MapPalette.Text, MapTextAnchor.Middle);
                }
            }
        }

        return y + (levels * (rowHeight + rowGap));
    }

    /// <summary>The memory map: a strip wrapped into rows of a power-of-two number of bytes.</summary>
    private static double Strip(MapScene scene, HeapSnapshot snapshot, ulong span, double y)
    {
        ulong rows = Math.Clamp(span / ((ulong)StripWidth * snapshot.MinBlockSize), 1, MaxRows);
        ulong rowBytes = span / rows;
        double pxPerByte = StripWidth / rowBytes;
        double rowHeight = rows == 1 ? 48 : Math.Clamp(Math.Floor(320.0 / rows), 5, 24);
        const double rowGap = 1;
        string scale = pxPerByte > 1 ? $"1 B = {N(pxPerByte)} px" : $"1 px = {ByteSize.Long((ulong)Math.Round(1 / pxPerByte))}";
        string wrap = rows == 1 ? "one row" : $"{rows} rows of {ByteSize.Long(rowBytes)}, read like text: left to right, then down";
        scene.Text(20, y, $"Memory map: every block at its offset and size ({wrap}; {scale})", 14, MapPalette.Text, bold: true);
        y += 14;

        // Top axis: the byte within a row.
        double axisY = y + 16;
        scene.Text(LabelX, axisY - 4, "row offset", 10, MapPalette.Muted, MapTextAnchor.End);
        for (int quarter = 0; quarter <= 4; quarter++)
        {
            double x = StripX + (quarter * StripWidth / 4);
            string label = quarter == 0 ? "+0" : "+" + ByteSize.Long(rowBytes * (ulong)quarter / 4);
            scene.Text(x, axisY - 4, label, 10, MapPalette.Muted, quarter == 0 ? MapTextAnchor.Start : quarter == 4 ? MapTextAnchor.End : MapTextAnchor.Middle);
            scene.Line(x, axisY - 1, x, axisY + 3, MapPalette.Grid);
        }

        double top = axisY + 4;
        double stripHeight = (rows * (rowHeight + rowGap)) - rowGap;
        scene.Rect(StripX, top, StripWidth, stripHeight, MapPalette.Unmanaged);

        int labelEvery = (int)Math.Ceiling(11 / (rowHeight + rowGap));
        for (ulong row = 0; row < rows; row += (ulong)labelEvery)
        {
            scene.Text(LabelX, top + (row * (rowHeight + rowGap)) + Math.Min(rowHeight, 10) - 1, "0x" + (row * rowBytes).ToString("x", CultureInfo.InvariantCulture), 10, MapPalette.Muted, MapTextAnchor.End);
        }

        // Blocks of a pixel or more are drawn one by one; smaller ones add their bytes to the pixel they fall in.
        ulong bytesPerPixel = pxPerByte >= 1 ? 0 : (ulong)Math.Round(1 / pxPerByte);
        var cells = new Dictionary<ulong, CellShares>();
        foreach (HeapBlock block in snapshot.Blocks)
        {
            if (block.Size < bytesPerPixel)
            {
                ulong cell = block.Offset / bytesPerPixel;
                cells[cell] = cells.GetValueOrDefault(cell).Add(block.State, block.Size);
                continue;
            }

            double shade = MapPalette.Shade(block.Order, snapshot.OrderCount);
            string fill = MapPalette.For(block.State, shade);
            for (ulong cursor = block.Offset; cursor < block.End;)
            {
                ulong row = cursor / rowBytes;
                ulong within = cursor % rowBytes;
                ulong wholeRows = within == 0 ? (block.End - cursor) / rowBytes : 0;
                double rowY = top + (row * (rowHeight + rowGap));
                if (wholeRows > 0)
                {
                    double height = (wholeRows * (rowHeight + rowGap)) - rowGap;
                    scene.Rect(StripX, rowY, StripWidth, height, fill);
                    if (height >= 14)
                    {
                        scene.Text(StripX + (StripWidth / 2), rowY + (height / 2) + 4, BlockLabel(block, snapshot.Slabs.Count != 0), 11, MapPalette.LabelOn(shade), MapTextAnchor.Middle);
                    }

                    cursor += wholeRows * rowBytes;
                    continue;
                }

                ulong segmentEnd = Math.Min(block.End, (row + 1) * rowBytes);
                double x = StripX + (within * pxPerByte);
                double width = (segmentEnd - cursor) * pxPerByte;
                scene.Rect(x, rowY, width >= 3 ? width - 1 : width, rowHeight, fill);
                if (width >= 56 && rowHeight >= 14)
                {
                    scene.Text(x + (width / 2), rowY + (rowHeight / 2) + 4, BlockLabel(block, snapshot.Slabs.Count != 0), 11, MapPalette.LabelOn(shade), MapTextAnchor.Middle);
                }

                cursor = segmentEnd;
            }
        }

        foreach ((ulong cell, CellShares shares) in cells)
        {
            ulong offset = cell * bytesPerPixel;
            double x = StripX + ((offset % rowBytes) * pxPerByte);
            double rowY = top + (offset / rowBytes * (rowHeight + rowGap));
            double bottom = rowY + rowHeight;
            foreach ((BlockState state, ulong bytes) in shares.InDrawingOrder())
            {
                double height = rowHeight * bytes / bytesPerPixel;
                scene.Rect(x, bottom - height, 1, height, MapPalette.For(state, 0));
                bottom -= height;
            }
        }

        double y2 = top + stripHeight + 16;
        if (cells.Count != 0)
        {
            scene.Text(20, y2, $"Aggregated: {Count(cells.Count, "pixel")} {(cells.Count == 1 ? "holds" : "hold")} blocks smaller than a pixel ({ByteSize.Long(bytesPerPixel)}). Such a pixel is a small stacked bar: its height is split by the share of its bytes", 12, MapPalette.Text);
            scene.Text(20, y2 + 16, "allocated (bottom, dark red), cached (dark purple) and free (top, dark green).", 12, MapPalette.Text);
            y2 += 16;
        }
        else
        {
            scene.Text(20, y2, "Every block is at least a pixel wide: nothing is aggregated. A thin white gap separates neighbouring blocks three or more pixels wide.", 12, MapPalette.Muted);
        }

        return y2;
    }

    /// <summary>The buddyinfo row, U(j) and F(j), one column per order.</summary>
    private static double Indices(MapScene scene, HeapSnapshot snapshot, double y)
    {
        int orders = snapshot.OrderCount;
        double column = Math.Min(64, StripWidth / orders);
        scene.Text(20, y, "Free blocks per order (/proc/buddyinfo) and Linux's fragmentation indices (mm/vmstat.c)", 14, MapPalette.Text, bold: true);
        y += 22;
        string[] labels = ["order j", "block size", "free blocks", "U(j) unusable", "F(j) fragmentation"];
        double[] rowY = [y, y + 16, y + 34, y + 96, y + 158];
        for (int i = 0; i < labels.Length; i++)
        {
            scene.Text(LabelX, rowY[i], labels[i], 11, MapPalette.Text, MapTextAnchor.End, bold: i == 2);
        }

        const double barHeight = 40;
        scene.Line(StripX, rowY[3], StripX + (orders * column), rowY[3], MapPalette.Grid);
        scene.Line(StripX, rowY[4], StripX + (orders * column), rowY[4], MapPalette.Grid);
        scene.Text(StripX - 2, rowY[3] - barHeight + 4, "1", 9, MapPalette.Muted, MapTextAnchor.End);
        scene.Text(StripX - 2, rowY[4] - barHeight + 4, "1", 9, MapPalette.Muted, MapTextAnchor.End);
        double font = column >= 44 ? 11 : 9;
        for (int order = 0; order < orders; order++)
        {
            double center = StripX + (order * column) + (column / 2);
            scene.Text(center, rowY[0], order.ToString(CultureInfo.InvariantCulture), font, MapPalette.Text, MapTextAnchor.Middle);
            scene.Text(center, rowY[1], column >= 44 ? ByteSize.Long(snapshot.MinBlockSize << order) : ByteSize.Short(snapshot.MinBlockSize << order), font, MapPalette.Muted, MapTextAnchor.Middle);
            long free = snapshot.FreeBlocksByOrder[order];
            scene.Text(center, rowY[2], N(free), font + 1, free == 0 ? MapPalette.Muted : MapPalette.Text, MapTextAnchor.Middle, bold: free != 0);

            double unusable = snapshot.UnusableFreeIndex(order);
            double barWidth = Math.Max(column - 8, 2);
            scene.Rect(center - (barWidth / 2), rowY[3] - (barHeight * unusable), barWidth, barHeight * unusable, MapPalette.IndexBar);
            scene.Text(center, rowY[3] + 12, unusable.ToString("0.00", CultureInfo.InvariantCulture), font, MapPalette.Text, MapTextAnchor.Middle);

            double fragmentation = snapshot.FragmentationIndex(order);
            if (fragmentation > 0)
            {
                scene.Rect(center - (barWidth / 2), rowY[4] - (barHeight * fragmentation), barWidth, barHeight * fragmentation, MapPalette.IndexBar);
            }

            string fText = fragmentation == -1 ? "−1" : fragmentation.ToString("0.00", CultureInfo.InvariantCulture).Replace('-', '−');
            scene.Text(center, rowY[4] + 12, fText, font, fragmentation == -1 ? MapPalette.Muted : MapPalette.Text, MapTextAnchor.Middle);
        }

        y = rowY[4] + 34;
        scene.Text(20, y, "free blocks: how many free blocks of each size sit on the buddy lists (Linux's /proc/buddyinfo row).", 12, MapPalette.Muted);
        scene.Text(20, y + 16, "U(j), unusable free index: the share of free bytes that cannot serve a request of order j because they lie in smaller blocks (0 = all usable, 1 = none).", 12, MapPalette.Muted);
        scene.Text(20, y + 32, "F(j), fragmentation index: −1 when a block of order j or larger is free; otherwise near 1 = a request of order j fails for fragmentation, near 0 or below = for lack of memory.", 12, MapPalette.Muted);
        return y + 32;
    }

    private static NodeKind Classify(HeapSnapshot snapshot, ulong start, ulong size, out HeapBlock block)
    {
        IReadOnlyList<HeapBlock> blocks = snapshot.Blocks;

        // The first block that ends after the node's start: the one holding the start, or the next one after a gap.
        int low = 0;
        int high = blocks.Count;
        while (low < high)
        {
            int mid = (low + high) >>> 1;
            if (blocks[mid].End <= start)
            {
                low = mid + 1;
            }
            else
            {
                high = mid;
            }
        }

        block = low < blocks.Count ? blocks[low] : default;
        if (low == blocks.Count || block.Offset >= start + size)
        {
            return NodeKind.Empty;
        }

        if (block.Offset == start && block.Size == size)
        {
            return NodeKind.Block;
        }

        return block.Offset <= start && block.End >= start + size ? NodeKind.Inside : NodeKind.Split;
    }

    private static string BlockLabel(HeapBlock block, bool slabs)
        => $"{ByteSize.Long(block.Size)} {(block.State == BlockState.Allocated ? "used" : block.State == BlockState.Cached && slabs ? "free" : block.State.ToString().ToLowerInvariant())}";

    private static string N(long value) => value.ToString("N0", CultureInfo.InvariantCulture);

    /// <summary>"1 block", "2 blocks", "1,024 blocks".</summary>
    private static string Count(long value, string noun) => $"{N(value)} {noun}{(value == 1 ? string.Empty : "s")}";

    private static string N(double value) => value.ToString("0.##", CultureInfo.InvariantCulture);

    private enum NodeKind
    {
        Empty,
        Block,
        Split,
        Inside,
    }
}
