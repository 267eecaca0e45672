namespace BuddySystem;

public sealed unsafe partial class ConcurrentHeap
{
    /// <summary>
    /// One thread's caches for one heap, and that thread's share of the counters. The owning thread changes them inside its
    /// busy window (lock-free) or under the heap's lock; any other thread only under the lock, with the cache paused or its
    /// owner exited.
    /// </summary>
    private sealed class ThreadCache : PausableOwner
    {
        /// <summary>The key of the heap this cache belongs to (<see cref="_threadKey"/>): not the heap, so that the
        /// thread-static holding the cache does not keep a heap its owner dropped alive.</summary>
        public readonly object HeapKey;
        public readonly Thread Owner;

        /// <summary>The per-order caches, in a pinned array so the fast path indexes them without bounds checks.</summary>
        public readonly BuddyHeap.OrderCache* Caches;

        /// <summary>The region the owner used last (its bounds and side table), so the fast path needs no load through the core.</summary>
        public ulong HotStart;
        public ulong HotLength;
        public byte* HotStates;

        private readonly byte[] _cacheMemory;
        private int _lastRegion;
        private readonly int _maxCachedOrder;

        public ThreadCache(ConcurrentHeap heap, BuddyHeapOptions options)
        {
            HeapKey = heap._threadKey;
            Owner = Thread.CurrentThread;
            _maxCachedOrder = options.LazyCaches ? options.MaxCachedOrder : -1;
            Caches = CacheLines.AllocatePinned<BuddyHeap.OrderCache>(BuddyHeapOptions.MaxCachedOrderLimit + 1, out _cacheMemory);
            for (int order = 0; order <= _maxCachedOrder; order++)
            {
                Caches[order].Initialize(options.CapacityOf(order, BuddyHeap.MinShift));
            }
        }

        /// <summary>The state byte of a block known to start in some region of <paramref name="core"/>, the heap's core.</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public byte* StateOf(ulong block, BuddyHeap core)
        {
            ulong offset = block - HotStart;
            return offset < HotLength ? HotStates + (offset >> BuddyHeap.MinShift) : StateOfCold(block, core);
        }

        [MethodImpl(MethodImplOptions.NoInlining)]
        private byte* StateOfCold(ulong block, BuddyHeap core)
        {
            byte* state = core.StateSlot(block, ref _lastRegion);
            BuddyHeap.Region region = core.RegionAt(_lastRegion);
            HotStates = region.States;
            HotStart = region.Start;
            HotLength = region.End - region.Start;
            return state;
        }

        /// <summary>Bytes parked in these caches (read racily from another thread: a snapshot).</summary>
        public ulong CachedBytes()
        {
            ulong bytes = 0;
            for (int order = 0; order <= _maxCachedOrder; order++)
            {
                bytes += (ulong)Volatile.Read(ref Caches[order].Count) * ((ulong)BuddyHeap.MinBlockSize << order);
            }

            return bytes;
        }

        /// <summary>Forgets every cached block (the heap is disposed, or the blocks went back to the core).</summary>
        public void Clear()
        {
            for (int order = 0; order <= _maxCachedOrder; order++)
            {
                Caches[order].Head = null;
                Caches[order].Count = 0;
            }
        }
    }
}
