namespace BuddySystem.Diagnostics;

/// <summary>One heap (and, for a pool, the pool) published by <see cref="BuddyMetrics"/>: weak references, its tag, and the
/// snapshot of the current poll.</summary>
internal sealed class HeapRegistration : IDisposable
{
    private readonly WeakReference<IHeapStatsSource>? _heap;
    private readonly WeakReference<Buffers.BuddyMemoryPool>? _pool;
    private readonly Lock _lock = new();
    private HeapStats? _snapshot;

    // Bit i set: instrument i has read _snapshot. A second read by the same instrument means a new poll, so take a new
    // snapshot: one Stats walk serves all instruments of a poll and a value is never older than one poll.
    private int _readBy;

    internal HeapRegistration(IHeapStatsSource? heap, Buffers.BuddyMemoryPool? pool, string name)
    {
        _heap = heap is null ? null : new WeakReference<IHeapStatsSource>(heap);
        _pool = pool is null ? null : new WeakReference<Buffers.BuddyMemoryPool>(pool);
        Tags = [new KeyValuePair<string, object?>(BuddyMetrics.HeapNameTag, name)];
    }

    internal KeyValuePair<string, object?>[] Tags { get; }

    internal bool IsAlive => _pool is not null ? _pool.TryGetTarget(out _) : _heap!.TryGetTarget(out _);

    /// <summary>Whether a heap is published (a pool over an allocator without statistics publishes its buffers only).</summary>
    internal bool HasHeap => _heap is not null;

    /// <summary>The pool's buffers rented and not returned; null when this registration has no pool or it is gone.</summary>
    internal long? RentedBuffers => _pool is not null && _pool.TryGetTarget(out Buffers.BuddyMemoryPool? pool) ? pool.RentedBuffers : null;

    /// <summary>The heap's stats for <paramref name="instrument"/>; null once the heap is gone or disposed.</summary>
    internal HeapStats? Snapshot(int instrument)
    {
        int bit = 1 << instrument;
        lock (_lock)
        {
            if (_snapshot is null || (_readBy & bit) != 0)
            {
                if (_heap is null || !_heap.TryGetTarget(out IHeapStatsSource? heap))
                {
                    return null;
                }

                try
                {
                    _snapshot = heap.Stats;
                }
                catch (ObjectDisposedException)
                {
                    return null;
                }

                _readBy = 0;
            }

            _readBy |= bit;
            return _snapshot;
        }
    }

    public void Dispose() => BuddyMetrics.Unregister(this);
}
