namespace BuddySystem.Internals;

/// <summary>The one way every engine resizes a block that cannot stay where it is.</summary>
internal static unsafe class Moves
{
    /// <summary>
    /// Allocates a block of <paramref name="newSize"/> bytes with <paramref name="layout"/>'s alignment, copies the first
    /// <c>min(old, new)</c> bytes and frees the old block; on failure the old block stays live and null is returned.
    /// </summary>
    internal static void* AllocateCopyFree(IAllocator allocator, void* ptr, Layout layout, nuint newSize)
    {
        void* moved = allocator.Allocate(new Layout(newSize, layout.Align));
        if (moved != null)
        {
            Buffer.MemoryCopy(ptr, moved, newSize, Math.Min(layout.Size, newSize));
            allocator.Deallocate(ptr, layout);
        }

        return moved;
    }
}
