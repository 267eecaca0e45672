using BuddySystem.Internals;

namespace BuddySystem;

public sealed unsafe partial class ConcurrentHeap
{
    /// <summary>Runs <paramref name="read"/> on the core heap under the lock, for diagnostics that read its side tables.</summary>
    /// <remarks>Every thread's cache is paused meanwhile, so no block is mid-change: blocks in caches show as cached.</remarks>
    internal TResult ReadCore<TResult>(Func<BuddyHeap, TResult> read)
    {
        lock (_lock)
        {
            PausableOwner.PauseAll(_caches);
            try
            {
                return read(_core);
            }
            finally
            {
                PausableOwner.ResumeAll(_caches);
            }
        }
    }
}
