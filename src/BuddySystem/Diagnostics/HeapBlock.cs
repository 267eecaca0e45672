namespace BuddySystem.Diagnostics;

/// <summary>One block of a <see cref="HeapSnapshot"/>.</summary>
/// <param name="Offset">Where the block starts, in bytes from <see cref="HeapSnapshot.BaseAddress"/>; a multiple of <see cref="Size"/>
/// when the heap's base is aligned to its largest block (as <see cref="BuddyHeap.Create"/> arranges).</param>
/// <param name="Order">The block's order: it holds <c>MinBlockSize &lt;&lt; Order</c> bytes.</param>
/// <param name="Size">The block's size in bytes.</param>
/// <param name="State">Free, allocated, cached, or unknown.</param>
public readonly record struct HeapBlock(ulong Offset, int Order, ulong Size, BlockState State)
{
    /// <summary>The first byte after the block, as an offset.</summary>
    public ulong End => Offset + Size;
}
