namespace BuddySystem.Internals;

/// <summary>
/// Keeps objects given up for reuse and hands each out again only after a quarantine: at least <see cref="Quarantine"/>
/// other objects were given up after it on the same thread. Allocation-free once warm, and lock-free on the common path.
/// </summary>
/// <remarks>
/// <para>Each thread has a ring of <see cref="ThreadRing"/> objects it gave up, oldest first, touched by that thread only
/// (no interlocked instruction). A thread takes the oldest of its ring while more than <see cref="Quarantine"/> wait there.
/// When its ring is full, the older half moves to a shared store (one lock per <see cref="Quarantine"/> objects); a thread
/// whose ring is down to its quarantine (it gives up fewer objects than it takes, as a thread that rents buffers
/// others return) takes a batch from there. Both keep the quarantine: an object leaves a ring only as one of its older half.</para>
/// <para>A design from the runtime's <c>SharedArrayPool</c> (a per-thread level over per-core stacks) made FIFO: a bounded
/// multi-producer queue (Vyukov's) was tried first and, on a loaded machine, a producer preempted between claiming a cell and
/// filling it left every consumer seeing an empty queue: thousands of new objects per preemption.</para>
/// <para>Bounded: <c>capacity</c> in the shared store, <see cref="ThreadRing"/> per thread that used the recycler; a thread
/// serves up to <see cref="RecyclersPerThread"/> recyclers from its own ring and the others from the shared store alone.</para>
/// </remarks>
/// <typeparam name="T">The objects.</typeparam>
internal sealed class ObjectRecycler<T>
    where T : class
{
    /// <summary>Objects each thread keeps of its own.</summary>
    public const int ThreadRing = 128;

    /// <summary>Objects given up after an object, on its thread, before it is handed out again.</summary>
    public const int Quarantine = ThreadRing / 2;

    /// <summary>Recyclers a thread keeps a ring for; more than that are served by their shared store alone.</summary>
    public const int RecyclersPerThread = 4;

    [ThreadStatic]
    private static ThreadCache?[]? t_caches;

    private readonly T?[] _shared;
    private SpinGate _gate;
    private int _sharedHead;
    private int _sharedCount;
    private volatile bool _closed;

    /// <summary>Creates an empty recycler whose shared store holds up to <paramref name="capacity"/> objects.</summary>
    public ObjectRecycler(int capacity) => _shared = new T?[Math.Max(capacity, Quarantine)];

    /// <summary>An object that served its quarantine, or null (make a new one).</summary>
    public T? Take()
    {
        ThreadCache? cache = CacheOfThisThread();
        if (cache is null)
        {
            return TakeShared(out T? item) ? item : null;
        }

        if (cache.ReadyCount > 0)
        {
            T ready = cache.Ready[--cache.ReadyCount]!;
            cache.Ready[cache.ReadyCount] = null;
            return ready;
        }

        if (cache.Count > Quarantine)
        {
            return cache.TakeOldest();
        }

        return RefillFromShared(cache) ? Take() : null;
    }

    /// <summary>Gives <paramref name="item"/> up for reuse after its quarantine; after <see cref="Close"/> it is left to the GC.</summary>
    public void Give(T item)
    {
        if (_closed)
        {
            return;
        }

        ThreadCache? cache = CacheOfThisThread();
        if (cache is null)
        {
            // No ring on this thread: the shared store would hand it out at once, so it goes to the GC instead.
            return;
        }

        if (cache.Count == ThreadRing)
        {
            SpillOlderHalf(cache);
        }

        cache.Add(item);
    }

    /// <summary>Stops keeping objects; the threads' rings let go of theirs the next time they look (bounded meanwhile).</summary>
    public void Close()
    {
        _closed = true;
        _gate.Enter();
        Array.Clear(_shared);
        _sharedCount = 0;
        _gate.Exit();
    }

    private ThreadCache? CacheOfThisThread()
    {
        ThreadCache?[] caches = t_caches ??= new ThreadCache?[RecyclersPerThread];
        for (int i = 0; i < caches.Length; i++)
        {
            if (ReferenceEquals(caches[i]?.Owner, this))
            {
                return caches[i];
            }
        }

        if (_closed)
        {
            return null;
        }

        // A free place, or one a closed recycler still holds.
        for (int i = 0; i < caches.Length; i++)
        {
            if (caches[i] is null || caches[i]!.Owner._closed)
            {
                return caches[i] = new ThreadCache(this);
            }
        }

        return null;
    }

    private bool TakeShared(out T? item)
    {
        item = null;
        _gate.Enter();
        if (_sharedCount > 0)
        {
            item = _shared[_sharedHead];
            _shared[_sharedHead] = null;
            _sharedHead = (_sharedHead + 1) % _shared.Length;
            _sharedCount--;
        }

        _gate.Exit();
        return item is not null;
    }

    // Moves up to a batch of the shared store's oldest objects to this thread's ready stack.
    private bool RefillFromShared(ThreadCache cache)
    {
        if (Volatile.Read(ref _sharedCount) == 0)
        {
            return false;
        }

        _gate.Enter();
        int moved = Math.Min(_sharedCount, cache.Ready.Length);
        for (int i = 0; i < moved; i++)
        {
            cache.Ready[i] = _shared[_sharedHead];
            _shared[_sharedHead] = null;
            _sharedHead = (_sharedHead + 1) % _shared.Length;
        }

        _sharedCount -= moved;
        _gate.Exit();
        cache.ReadyCount = moved;
        return moved > 0;
    }

    // The ring is full: its older half (each with at least Quarantine newer behind it) goes to the shared store; what does
    // not fit there goes to the GC.
    private void SpillOlderHalf(ThreadCache cache)
    {
        _gate.Enter();
        for (int i = 0; i < Quarantine; i++)
        {
            T item = cache.TakeOldest();
            if (_sharedCount < _shared.Length)
            {
                _shared[(_sharedHead + _sharedCount) % _shared.Length] = item;
                _sharedCount++;
            }
        }

        _gate.Exit();
    }

    private sealed class ThreadCache(ObjectRecycler<T> owner)
    {
        public readonly ObjectRecycler<T> Owner = owner;
        public readonly T?[] Ring = new T?[ThreadRing];
        public readonly T?[] Ready = new T?[Quarantine];
        public int Head;
        public int Count;
        public int ReadyCount;

        public void Add(T item)
        {
            Ring[(Head + Count) % ThreadRing] = item;
            Count++;
        }

        public T TakeOldest()
        {
            T item = Ring[Head]!;
            Ring[Head] = null;
            Head = (Head + 1) % ThreadRing;
            Count--;
            return item;
        }
    }
}
