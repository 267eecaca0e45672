namespace BuddySystem;

/// <summary>What <see cref="SharedHeapLockState"/> says of a <see cref="SharedHeap"/>'s lock.</summary>
public enum SharedHeapLockStatus
{
    /// <summary>Nobody holds the lock.</summary>
    Free,

    /// <summary>A live thread holds the lock (<see cref="SharedHeapLockState.HolderThreadId"/>).</summary>
    Held,

    /// <summary>The process holding the lock died; the kernel released it, and the next caller recovers the heap.</summary>
    HolderDied,

    /// <summary>A process unlocked the lock after its holder died without making it consistent: every call fails with a
    /// <see cref="HeapCorruptionException"/>.</summary>
    NotRecoverable,
}
