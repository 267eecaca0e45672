namespace BuddySystem.Cli.Bench;

/// <summary>The reallocate of the adapters over offset allocators (<c>buddy-tree</c>, <c>shared-heap</c>), which have none of their own.</summary>
/// <remarks>Generic over the adapter struct, so the JIT compiles one copy per adapter and its Allocate and Free stay direct calls.</remarks>
internal static unsafe class OffsetMoves
{
    /// <summary>
    /// Keeps <paramref name="block"/> when <paramref name="sameBlock"/> (the new size maps to the same block size); else
    /// allocates, copies the first <c>min(size, newSize)</c> bytes and frees the old block. Returns 0 on failure, the old
    /// block then staying live.
    /// </summary>
    public static nuint Reallocate<T>(T allocator, bool sameBlock, nuint block, nuint size, nuint align, nuint newSize)
        where T : struct, IBenchAllocator
    {
        if (sameBlock)
        {
            return block;
        }

        nuint moved = allocator.Allocate(newSize, align);
        if (moved != 0)
        {
            Buffer.MemoryCopy((void*)block, (void*)moved, newSize, Math.Min(size, newSize));
            allocator.Free(block, size, align);
        }

        return moved;
    }
}
