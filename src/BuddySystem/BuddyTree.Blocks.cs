using BuddySystem.Diagnostics;

namespace BuddySystem;

public sealed partial class BuddyTree
{
    /// <summary>The number of orders the tree covers: 0 to the root's order.</summary>
    internal int OrderCount => _treeOrder + 1;

    /// <summary>The node bytes, heap-ordered (root at 1, children of i at 2i and 2i + 1, index 0 unused), for the tree views.</summary>
    internal ReadOnlySpan<byte> Nodes => _nodes;

    /// <summary>The number of leaves: blocks of order 0 in the whole tree, a power of two.</summary>
    internal ulong LeafCount => _leafCount;

    /// <summary>The order of the root node.</summary>
    internal int RootOrder => _treeOrder;

    /// <summary>
    /// Appends every block (free and allocated) to <paramref name="blocks"/> in offset order; reads the nodes only.
    /// Space beyond the usable end belongs to no block.
    /// </summary>
    /// <remarks>Descends only into nodes that are split: O(blocks × tree height) at worst, for diagnostics.</remarks>
    internal void CollectBlocks(List<HeapBlock> blocks) => CollectBlocks(1, _treeOrder, blocks);

    private void CollectBlocks(nuint index, int order, List<HeapBlock> blocks)
    {
        ulong size = BlockSize(order);
        ulong start = (ulong)(index - (_leafCount >> order)) * size;
        if (start >= _usableBytes)
        {
            return;
        }

        byte value = _nodes[index];
        if (value == order + 1)
        {
            blocks.Add(new HeapBlock(start, order, size, BlockState.Free));
            return;
        }

        // A node with value 0 is allocated when its children still hold their wholly-free values (an allocation leaves
        // them as they were); a split node whose halves are both used up also reads 0, but its children do not.
        bool allocated = value == 0 && start + size <= _usableBytes &&
            (order == 0 || (_nodes[2 * index] == order && _nodes[(2 * index) + 1] == order));
        if (allocated)
        {
            blocks.Add(new HeapBlock(start, order, size, BlockState.Allocated));
        }
        else if (order > 0)
        {
            CollectBlocks(2 * index, order - 1, blocks);
            CollectBlocks((2 * index) + 1, order - 1, blocks);
        }
    }
}
