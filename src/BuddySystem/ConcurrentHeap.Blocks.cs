namespace BuddySystem;

public sealed unsafe partial class ConcurrentHeap
{
    /// <summary>Runs <paramref name="read"/> on the core heap under the lock, for diagnostics that read its side tables.</summary>
    /// <remarks>Blocks in threads' caches carry their own state in the side table, so they show as cached; threads that
    /// allocate or free on the lock-free path meanwhile may leave a block mid-change, which a snapshot reports as unknown.</remarks>
    internal TResult ReadCore<TResult>(Func<BuddyHeap, TResult> read)
    {
        lock (_lock)
        {
            return read(_core);
        }
    }
}
