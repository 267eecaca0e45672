namespace BuddySystem.Cli.Bench;

/// <summary>
/// One step of the W3 stream: allocate <see cref="Size"/> bytes (align 8) and append the block to the live list, or free
/// the live block at <see cref="Index"/> and move the last live block into its place (swap-remove).
/// </summary>
/// <param name="IsAllocate">True for an allocation, false for a free.</param>
/// <param name="Index">For a free: the index in the live list (0 ≤ Index &lt; live count). For an allocation: the index the new block takes (the live count before it).</param>
/// <param name="Size">For an allocation: bytes wanted; 0 for a free.</param>
internal readonly record struct W3Op(bool IsAllocate, int Index, ulong Size);
