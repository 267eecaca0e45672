namespace BuddySystem.Diagnostics;

/// <summary>What a block of a <see cref="HeapSnapshot"/> holds.</summary>
public enum BlockState
{
    /// <summary>On a buddy free list: can be handed out, split or merged.</summary>
    Free,

    /// <summary>Handed out by Allocate and not yet freed.</summary>
    Allocated,

    /// <summary>Freed by the user but parked in a lazy cache instead of being merged back into the buddy lists.</summary>
    Cached,

    /// <summary>
    /// The engine's metadata holds a state this version does not know (or a granule that should start a block but
    /// has none); the snapshot keeps going with a block of the smallest order so the rest of the heap is still shown.
    /// </summary>
    Unknown,
}
