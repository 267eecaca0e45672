namespace BuddySystem;

/// <summary>
/// A <see cref="BuddyHeap"/> behind a lock, safe from any thread: the crate's <c>LockedHeap</c>, and with a rescue
/// callback its <c>LockedHeapWithRescue</c>.
/// </summary>
/// <remarks>
/// <para>Every call takes one lock (<see cref="Lock"/>) around the engine call, so it costs one uncontended
/// lock/unlock more than <see cref="BuddyHeap"/> and serialises threads. For many threads use
/// <see cref="ConcurrentHeap"/>, whose per-thread caches take the lock once per batch.</para>
/// <para>When an allocation fails, the rescue callback (if any) runs once under the lock with the heap and the failed
/// layout; it may add regions. The allocation is then retried once.</para>
/// <para>Thread safety: every member is safe from any thread. The rescue callback must not call back into this heap.</para>
/// </remarks>
public sealed unsafe class LockedHeap : IAllocator, IHeapStatsSource, IDisposable
{
    private readonly Lock _lock = new();
    private readonly BuddyHeap _heap;
    private readonly Action<BuddyHeap, Layout>? _rescue;

    /// <summary>Wraps <paramref name="heap"/>; from now on use it only through this object.</summary>
    /// <param name="heap">The engine. This object takes ownership: disposing it disposes the heap.</param>
    /// <param name="rescue">Called under the lock when an allocation fails; may add memory with <see cref="BuddyHeap.AddRegion"/>.</param>
    /// <exception cref="ArgumentNullException"><paramref name="heap"/> is null.</exception>
    public LockedHeap(BuddyHeap heap, Action<BuddyHeap, Layout>? rescue = null)
    {
        ArgumentNullException.ThrowIfNull(heap);
        _heap = heap;
        _rescue = rescue;
    }

    /// <summary>Creates a locked heap over a new native region of <paramref name="size"/> bytes (see <see cref="BuddyHeap.Create"/>).</summary>
    /// <param name="size">Bytes to manage.</param>
    /// <param name="rescue">Optional rescue callback.</param>
    /// <param name="options">The engine's caching options; <see langword="null"/> for <see cref="BuddyHeapOptions.Default"/> (lazy caches on).</param>
    /// <returns>A heap that owns its memory.</returns>
    public static LockedHeap Create(nuint size, Action<BuddyHeap, Layout>? rescue = null, BuddyHeapOptions? options = null)
        => new(BuddyHeap.Create(size, options), rescue);

    /// <summary>Allocates as <see cref="BuddyHeap.Allocate"/> does, running the rescue callback once and retrying when it fails.</summary>
    /// <param name="layout">Size and alignment wanted.</param>
    /// <returns>The block, or <see langword="null"/> when even after the rescue no block is large enough.</returns>
    public void* Allocate(Layout layout)
    {
        lock (_lock)
        {
            void* block = _heap.Allocate(layout);
            if (block == null && _rescue != null)
            {
                _rescue(_heap, layout);
                block = _heap.Allocate(layout);
            }

            return block;
        }
    }

    /// <summary>Frees a block, with the checks of <see cref="BuddyHeap.Deallocate"/>.</summary>
    /// <param name="ptr">A live block of this heap.</param>
    /// <param name="layout">The layout it was allocated with.</param>
    public void Deallocate(void* ptr, Layout layout)
    {
        lock (_lock)
        {
            _heap.Deallocate(ptr, layout);
        }
    }

    /// <summary>Resizes a block as <see cref="BuddyHeap.Reallocate"/> does, under the lock.</summary>
    /// <param name="ptr">A live block of this heap.</param>
    /// <param name="layout">Its current layout.</param>
    /// <param name="newSize">The new size.</param>
    /// <returns>The block's address, or <see langword="null"/> when it could not move (the old block stays live).</returns>
    public void* Reallocate(void* ptr, Layout layout, nuint newSize)
    {
        lock (_lock)
        {
            return _heap.Reallocate(ptr, layout, newSize);
        }
    }

    /// <summary>Adds a region under the lock; see <see cref="BuddyHeap.AddRegion"/>.</summary>
    /// <param name="start">First byte.</param>
    /// <param name="size">Bytes.</param>
    public void AddRegion(void* start, nuint size)
    {
        lock (_lock)
        {
            _heap.AddRegion(start, size);
        }
    }

    /// <inheritdoc cref="BuddyHeap.Stats"/>
    public HeapStats Stats
    {
        get
        {
            lock (_lock)
            {
                return _heap.Stats;
            }
        }
    }

    /// <inheritdoc cref="BuddyHeap.Trim"/>
    public void Trim()
    {
        lock (_lock)
        {
            _heap.Trim();
        }
    }

    /// <inheritdoc cref="BuddyHeap.Validate"/>
    public void Validate()
    {
        lock (_lock)
        {
            _heap.Validate();
        }
    }

    /// <summary>Runs <paramref name="action"/> on the engine under the lock, for diagnostics that read it.</summary>
    /// <typeparam name="TResult">What the action returns.</typeparam>
    /// <param name="action">Reads the heap; must not keep it.</param>
    /// <returns>What the action returned.</returns>
    public TResult WithHeap<TResult>(Func<BuddyHeap, TResult> action)
    {
        ArgumentNullException.ThrowIfNull(action);
        lock (_lock)
        {
            return action(_heap);
        }
    }

    /// <summary>Disposes the engine (and the memory it owns). Calling it again is harmless.</summary>
    public void Dispose()
    {
        lock (_lock)
        {
            _heap.Dispose();
        }
    }
}
