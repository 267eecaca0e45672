using System.Runtime.InteropServices;

namespace BuddySystem.Internals;

/// <summary>The enqueue and dequeue positions of a <see cref="RecycleQueue{T}"/>, each on a cache line of its own, so producers
/// and consumers do not slow each other down (a generic type cannot have an explicit layout, hence a type of its own).</summary>
[StructLayout(LayoutKind.Explicit, Size = 3 * 64)]
internal struct QueuePositions
{
    /// <summary>The next position to fill.</summary>
    [FieldOffset(64)]
    public long Enqueue;

    /// <summary>The next position to take.</summary>
    [FieldOffset(128)]
    public long Dequeue;
}
