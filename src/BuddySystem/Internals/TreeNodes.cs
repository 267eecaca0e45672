namespace BuddySystem.Internals;

/// <summary>
/// The rules of a buddy tree's node array, shared by <see cref="BuddyTree"/> (a managed array) and
/// <see cref="SharedHeap"/> (a tree in mapped memory): node 1 is the root, node i's children are 2i and 2i+1, and a node
/// holds 0 when its range is wholly used, else 1 + the order of the largest free block below it.
/// </summary>
/// <remarks>Static over <c>ref byte</c> to the array's first element (node 0, unused), so a managed array and a mapped
/// pointer use the same code with no bounds checks; callers keep every index inside their tree.</remarks>
internal static class TreeNodes
{
    /// <summary>A parent's value from its children's: the buddies merge when both are wholly free (value = child order + 1).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static byte Combine(byte left, byte right, int childOrder)
    {
        int whole = childOrder + 1;
        return left == whole && right == whole ? (byte)(whole + 1) : Math.Max(left, right);
    }

    /// <summary>Which child the walk down takes; a struct per placement, so <see cref="Descend"/> is compiled once for each
    /// and the choice is made once per allocation, not once per level.</summary>
    public interface IChildRule
    {
        /// <summary>1 for the right child, 0 for the left, given both children's values and the value needed (order + 1).</summary>
        static abstract uint RightChild(int left, int right, int need);
    }

    /// <summary>The child whose largest free block is the smallest that still fits (<see cref="BuddyPlacement.BestFit"/>).</summary>
    public readonly struct BestFit : IChildRule
    {
        /// <inheritdoc/>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static uint RightChild(int left, int right, int need) => BestFitRightChild(left, right, need);
    }

    /// <summary>The left child whenever it fits (<see cref="BuddyPlacement.LeftFirst"/>).</summary>
    public readonly struct LeftFirst : IChildRule
    {
        /// <inheritdoc/>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static uint RightChild(int left, int right, int need) => left < need ? 1u : 0u;
    }

    /// <summary>The right child whenever it fits (<see cref="BuddyPlacement.RightFirst"/>).</summary>
    public readonly struct RightFirst : IChildRule
    {
        /// <inheritdoc/>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static uint RightChild(int left, int right, int need) => right >= need ? 1u : 0u;
    }

    /// <summary>Whether the tree of <paramref name="treeOrder"/> has a free block of <paramref name="order"/> (the root's value says).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static bool HasFreeBlock(ref byte nodes, int treeOrder, int order)
        => order <= treeOrder && Unsafe.Add(ref nodes, 1) > order;

    /// <summary>
    /// Walks down from the root to a free node of <paramref name="order"/> and returns its index; the tree must have one
    /// (<see cref="HasFreeBlock"/>). Every node on the way has a free block of at least that order below it (value &gt; order).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static nuint Descend<TRule>(ref byte nodes, int treeOrder, int order)
        where TRule : struct, IChildRule
    {
        int need = order + 1;
        nuint index = 1;
        for (int nodeOrder = treeOrder; nodeOrder > order; nodeOrder--)
        {
            nuint left = index << 1;
            index = left + TRule.RightChild(Unsafe.Add(ref nodes, left), Unsafe.Add(ref nodes, left + 1), need);
        }

        return index;
    }

    /// <summary>
    /// Best fit's step down: 1 for the right child, 0 for the left, given both children's values and the value needed —
    /// the child whose largest free block is the smallest that still fits; a tie goes left. Written as flag arithmetic
    /// rather than branches: which child wins is data-dependent, and a mispredicted branch per level costs more than the
    /// compares.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static uint BestFitRightChild(int left, int right, int need)
        => (left < need ? 1u : 0u) | ((right >= need ? 1u : 0u) & (right < left ? 1u : 0u));

    /// <summary>Recomputes the ancestors of <paramref name="index"/> (a node of <paramref name="order"/>), stopping at the
    /// first one whose value does not change: the ones above it cannot change either.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void UpdateAncestors(ref byte nodes, nuint index, int order)
    {
        while (index > 1)
        {
            nuint left = index & ~(nuint)1;
            byte value = Combine(Unsafe.Add(ref nodes, left), Unsafe.Add(ref nodes, left + 1), order);
            index >>= 1;
            order++;
            ref byte parent = ref Unsafe.Add(ref nodes, index);
            if (parent == value)
            {
                return;
            }

            parent = value;
        }
    }

    /// <summary>Counts the maximal free blocks below <paramref name="index"/> (a node of <paramref name="order"/>) into
    /// <paramref name="byOrder"/>: descends only into partly used nodes.</summary>
    public static void CountFreeBlocks(ref byte nodes, nuint index, int order, long[] byOrder)
    {
        byte value = Unsafe.Add(ref nodes, index);
        if (value == order + 1)
        {
            byOrder[order]++;
        }
        else if (value != 0 && order > 0)
        {
            CountFreeBlocks(ref nodes, 2 * index, order - 1, byOrder);
            CountFreeBlocks(ref nodes, (2 * index) + 1, order - 1, byOrder);
        }
    }
}
