namespace BuddySystem.Diagnostics;

/// <summary>One heap published by <see cref="BuddyMetrics"/>: a weak reference, its tag, and the snapshot of the current poll.</summary>
internal sealed class HeapRegistration : IDisposable
{
    private readonly WeakReference<IHeapStatsSource> _heap;
    private readonly Lock _lock = new();
    private HeapStats? _snapshot;

    // Bit i set: instrument i has read _snapshot. A second read by the same instrument means a new poll, so take a new
    // snapshot: one Stats walk serves all instruments of a poll and a value is never older than one poll.
    private int _readBy;

    internal HeapRegistration(IHeapStatsSource heap, string name)
    {
        _heap = new WeakReference<IHeapStatsSource>(heap);
        Tags = [new KeyValuePair<string, object?>(BuddyMetrics.HeapNameTag, name)];
    }

    internal KeyValuePair<string, object?>[] Tags { get; }

    internal bool IsAlive => _heap.TryGetTarget(out _);

    /// <summary>The heap's stats for <paramref name="instrument"/>; null once the heap is gone or disposed.</summary>
    internal HeapStats? Snapshot(int instrument)
    {
        int bit = 1 << instrument;
        lock (_lock)
        {
            if (_snapshot is null || (_readBy & bit) != 0)
            {
                if (!_heap.TryGetTarget(out IHeapStatsSource? heap))
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
