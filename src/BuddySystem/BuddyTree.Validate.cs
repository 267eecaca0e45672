namespace BuddySystem;

public sealed partial class BuddyTree
{
    /// <summary>
    /// Checks every invariant of the tree and throws <see cref="HeapCorruptionException"/> on the first violation: a wholly
    /// free or allocated node has only wholly-free values below it; any other node holds the combination of its children;
    /// nodes beyond the usable space are never free; the allocated bytes and live blocks add up.
    /// </summary>
    /// <remarks>Costs O(nodes): for tests and diagnostics, not for hot paths.</remarks>
    /// <exception cref="HeapCorruptionException">An invariant does not hold; the message says which node.</exception>
    public void Validate()
    {
        ulong usableUnits = _usableBytes >> _minShift;
        ulong allocated = 0;
        long live = 0;
        ValidateNode(1, _treeOrder, usableUnits, ref allocated, ref live);
        if (allocated != _allocatedBytes || live != _liveBlocks)
        {
            ThrowHelper.ThrowCorruption($"the tree holds {live} allocations of {allocated} bytes, but the counters say {_liveBlocks} of {_allocatedBytes}.");
        }
    }

    private void ValidateNode(nuint index, int order, ulong usableUnits, ref ulong allocated, ref long live)
    {
        ulong firstUnit = (ulong)(index - (_leafCount >> order)) << order;
        ulong endUnit = firstUnit + (1UL << order);
        byte value = _nodes[index];
        if (firstUnit >= usableUnits)
        {
            // Beyond the capacity: never free, never touched.
            ValidateSubtree(index, order, wholeValue: false);
            return;
        }

        if (endUnit > usableUnits)
        {
            // Straddles the end of the usable space: never wholly free, so never merged nor handed out whole.
            byte expected = order == 0 ? (byte)0 : Math.Max(_nodes[2 * index], _nodes[(2 * index) + 1]);
            if (value != expected)
            {
                ThrowCorruptNode(index, order, value, $"it straddles the end of the usable space and should hold {expected}");
            }

            if (order > 0)
            {
                ValidateNode(2 * index, order - 1, usableUnits, ref allocated, ref live);
                ValidateNode((2 * index) + 1, order - 1, usableUnits, ref allocated, ref live);
            }

            return;
        }

        if (value == order + 1)
        {
            ValidateSubtree(index, order, wholeValue: true);
            return;
        }

        if (value > order + 1)
        {
            ThrowCorruptNode(index, order, value, "its value exceeds its own order + 1");
        }

        bool childrenWhole = order == 0 || (_nodes[2 * index] == order && _nodes[(2 * index) + 1] == order);
        if (value == 0 && childrenWhole)
        {
            // An allocated node: its descendants keep their wholly-free values until it is freed.
            if (order > 0)
            {
                ValidateSubtree(2 * index, order - 1, wholeValue: true);
                ValidateSubtree((2 * index) + 1, order - 1, wholeValue: true);
            }

            allocated += BlockSize(order);
            live++;
            return;
        }

        ValidateNode(2 * index, order - 1, usableUnits, ref allocated, ref live);
        ValidateNode((2 * index) + 1, order - 1, usableUnits, ref allocated, ref live);
        byte combined = TreeNodes.Combine(_nodes[2 * index], _nodes[(2 * index) + 1], order - 1);
        if (value != combined)
        {
            ThrowCorruptNode(index, order, value, $"its children combine to {combined}");
        }
    }

    /// <summary>Checks that every node below and at <paramref name="index"/> holds its wholly-free value (order + 1) or 0.</summary>
    private void ValidateSubtree(nuint index, int order, bool wholeValue)
    {
        // Level by level: the subtree's nodes of one order are contiguous in heap order.
        nuint first = index;
        nuint count = 1;
        for (int level = order; level >= 0; level--)
        {
            byte expected = wholeValue ? (byte)(level + 1) : (byte)0;
            for (nuint node = first; node < first + count; node++)
            {
                if (_nodes[node] != expected)
                {
                    ThrowCorruptNode(node, level, _nodes[node], $"it lies in a wholly {(wholeValue ? "free or allocated" : "unusable")} range and should hold {expected}");
                }
            }

            first <<= 1;
            count <<= 1;
        }
    }

    private void ThrowCorruptNode(nuint index, int order, byte value, string why)
    {
        ulong start = (ulong)(index - (_leafCount >> order)) << (order + _minShift);
        ThrowHelper.ThrowCorruption($"tree node {index} (block of {BlockSize(order)} bytes at offset {ThrowHelper.Hex(start)}) holds {value}, but {why}.");
    }
}
