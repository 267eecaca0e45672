namespace BuddySystem.Diagnostics;

/// <summary>One slab of a <see cref="HeapSnapshot"/> of a <see cref="SlabHeap"/>: a buddy block cut into objects of one size class.</summary>
/// <param name="Offset">Where the slab starts, from <see cref="HeapSnapshot.BaseAddress"/>.</param>
/// <param name="Size">The slab's buddy block size in bytes.</param>
/// <param name="ObjectSize">Its class's object size in bytes.</param>
/// <param name="Objects">How many objects it holds.</param>
/// <param name="LiveObjects">How many of them are allocated.</param>
public readonly record struct HeapSlab(ulong Offset, ulong Size, uint ObjectSize, int Objects, int LiveObjects);
