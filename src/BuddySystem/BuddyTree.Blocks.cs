using BuddySystem.Diagnostics;

namespace BuddySystem;

public sealed partial class BuddyTree
{
    /// <summary>The number of orders the tree covers: 0 to the root's order.</summary>
    internal int OrderCount => _treeOrder + 1;

    /// <summary>
    /// The segment tree itself, read-only, for views that teach the algorithm: node i (root 1, children of i at 2i and
    /// 2i + 1, index 0 unused) covers a block of order <c>RootOrder - floor(log2 i)</c> and holds order + 1 of the largest
    /// free block below it, 0 for none (the seed's <c>log2 m</c>, counted from <see cref="MinBlockSize"/>).
    /// </summary>
    /// <remarks>A view of the live bytes: it shows every later change and must not be kept across calls on another thread.</remarks>
    public ReadOnlySpan<byte> Nodes => _nodes;

    /// <summary>The number of leaves (blocks of <see cref="MinBlockSize"/>) of the whole tree: a power of two, covering
    /// <see cref="Capacity"/> rounded up.</summary>
    public ulong LeafCount => _leafCount;

    /// <summary>The order of the root node: the tree has <c>RootOrder + 1</c> levels.</summary>
    public int RootOrder => _treeOrder;

    /// <summary>
    /// Whether node <paramref name="index"/> of <paramref name="order"/> in <paramref name="nodes"/> (a view like
    /// <see cref="Nodes"/>) is an allocated block: it holds 0 while its children keep their wholly-free values (an
    /// allocation leaves them as they were); a node whose halves are both used up also holds 0, but its children do not.
    /// </summary>
    /// <param name="nodes">The node bytes, heap-ordered.</param>
    /// <param name="index">The node's index (root 1).</param>
    /// <param name="order">The node's order.</param>
    /// <returns>True for an allocated block; a node past the capacity is the caller's to exclude.</returns>
    public static bool IsAllocatedNode(ReadOnlySpan<byte> nodes, int index, int order) =>
        nodes[index] == 0 && (order == 0 || (nodes[2 * index] == order && nodes[(2 * index) + 1] == order));

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
        bool allocated = start + size <= _usableBytes && IsAllocatedNode(_nodes, (int)index, order);
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
