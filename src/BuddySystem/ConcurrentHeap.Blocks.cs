using BuddySystem.Diagnostics;

namespace BuddySystem;

public sealed unsafe partial class ConcurrentHeap
{
    /// <summary>A snapshot under the lock with every thread paused: the core's blocks, each slab of the size-class tier
    /// drawn as its objects (see <see cref="HeapSnapshot.Of(ConcurrentHeap)"/>).</summary>
    internal HeapSnapshot Snapshot()
    {
        lock (_lock)
        {
            ThrowIfDisposed();
            PausableOwner.PauseAll(_caches);
            try
            {
                HeapSnapshot core = HeapSnapshot.Of(_core);
                if (_tier == null)
                {
                    return core;
                }

                var blocks = new List<HeapBlock>();
                var slabs = new List<HeapSlab>();
                _tier.ExpandSlabsLocked(core.BaseAddress, [.. core.Blocks], blocks, slabs);
                return core.WithBlocks(blocks, slabs);
            }
            finally
            {
                PausableOwner.ResumeAll(_caches);
            }
        }
    }
}
