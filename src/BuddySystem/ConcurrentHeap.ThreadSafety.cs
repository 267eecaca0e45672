namespace BuddySystem;

// In a file of its own while ConcurrentHeap.cs is being redesigned (issue 33); it may move there.
public sealed unsafe partial class ConcurrentHeap
{
    /// <summary>True: every member is safe from any thread (see the class remarks).</summary>
    public bool IsThreadSafe => true;
}
