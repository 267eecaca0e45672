namespace BuddySystem;

/// <summary>The state of a <see cref="SharedHeap"/>'s lock at one moment (<see cref="SharedHeap.LockState"/>,
/// <see cref="SharedHeap.PeekLockState"/>).</summary>
/// <param name="Status">Free, held, holder dead or not recoverable.</param>
/// <param name="HolderThreadId">The Linux thread id of the holder when <see cref="SharedHeapLockStatus.Held"/>, else 0.</param>
/// <param name="HolderProcessId">The process of that thread, or 0 when it cannot be told (another PID namespace).</param>
/// <param name="Recovering">Whether the holder took the lock from a dead holder and is recovering the heap.</param>
public readonly record struct SharedHeapLockState(SharedHeapLockStatus Status, int HolderThreadId, int HolderProcessId, bool Recovering)
{
    /// <summary>One line for people: <c>free</c>, <c>held by pid P (thread T)</c>, <c>holder died (the next caller
    /// recovers)</c> or <c>not recoverable</c>.</summary>
    /// <returns>The line.</returns>
    public override string ToString() => Status switch
    {
        SharedHeapLockStatus.Free => "free",
        SharedHeapLockStatus.Held => (HolderProcessId != 0 ? $"held by pid {HolderProcessId} (thread {HolderThreadId})" : $"held by thread {HolderThreadId}")
            + (Recovering ? ", recovering after a dead holder" : string.Empty),
        SharedHeapLockStatus.HolderDied => "holder died (the next caller recovers the heap)",
        _ => "not recoverable (unlocked after its holder died without a recovery)",
    };
}
