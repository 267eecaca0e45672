namespace BuddySystem;

/// <summary>
/// A <see cref="BuddyHeap"/> behind a lock, safe from any thread: the crate's <c>LockedHeap</c>, and with a rescue
/// callback its <c>LockedHeapWithRescue</c>.
/// </summary>
/// <remarks>
/// <para>Every call takes one spin lock around the engine call (as the crate's <c>LockedHeap</c> does with <c>spin::Mutex</c>):
/// one compare-exchange and one release store more than <see cref="BuddyHeap"/>; waiters spin briefly, then yield and
/// sleep. It serialises threads. For many threads use
/// <see cref="ConcurrentHeap"/>, whose per-thread caches take the lock once per batch.</para>
/// <para>When an allocation fails, the rescue callback (if any) runs once under the lock with the heap and the failed
/// layout; it may add regions. The allocation is then retried once.</para>
/// <para>Thread safety: every member is safe from any thread. The lock is not reentrant: the rescue callback and a <see cref="WithHeap{TResult}"/> action must not call back into this heap (that would deadlock).</para>
/// </remarks>
public sealed unsafe class LockedHeap : IAllocator, IHeapStatsSource, IExhaustionInfoSource, IDisposable
{
    // Not readonly: the gate is a mutable struct used in place.
    private SpinGate _gate;
    private readonly BuddyHeap _heap;
    private readonly Action<BuddyHeap, Layout>? _rescue;

    /// <summary>Wraps <paramref name="heap"/>; from now on use it only through this object.</summary>
    /// <param name="heap">The engine. This object takes ownership: disposing it disposes the heap.</param>
    /// <param name="rescue">Called under the lock when an allocation fails; may add memory with <see cref="BuddyHeap.AddRegion(void*, nuint)"/>.</param>
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
        using (_gate.EnterScope())
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
        using (_gate.EnterScope())
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
        using (_gate.EnterScope())
        {
            return _heap.Reallocate(ptr, layout, newSize);
        }
    }

    /// <summary>Adds a region under the lock; see <see cref="BuddyHeap.AddRegion(void*, nuint)"/>.</summary>
    /// <param name="start">First byte.</param>
    /// <param name="size">Bytes.</param>
    public void AddRegion(void* start, nuint size)
    {
        using (_gate.EnterScope())
        {
            _heap.AddRegion(start, size);
        }
    }

    /// <summary>Adds all of <paramref name="region"/> under the lock and keeps it reachable; see <see cref="BuddyHeap.AddRegion(NativeRegion)"/>.</summary>
    /// <param name="region">Native memory, the caller's to dispose after the heap.</param>
    public void AddRegion(NativeRegion region)
    {
        using (_gate.EnterScope())
        {
            _heap.AddRegion(region);
        }
    }

    /// <summary>Adds all of <paramref name="region"/> under the lock and keeps its array reachable; see <see cref="BuddyHeap.AddRegion(PinnedArrayRegion)"/>.</summary>
    /// <param name="region">A region of a pinned array.</param>
    public void AddRegion(PinnedArrayRegion region)
    {
        using (_gate.EnterScope())
        {
            _heap.AddRegion(region);
        }
    }

    (ulong FreeBytes, ulong LargestFreeBlock) IExhaustionInfoSource.ExhaustionInfo()
    {
        using (_gate.EnterScope())
        {
            return ((IExhaustionInfoSource)_heap).ExhaustionInfo();
        }
    }

    /// <summary>True: every member is safe from any thread (one lock serialises them).</summary>
    public bool IsThreadSafe => true;

    /// <inheritdoc cref="BuddyHeap.Stats"/>
    public HeapStats Stats
    {
        get
        {
            using (_gate.EnterScope())
            {
                return _heap.Stats;
            }
        }
    }

    /// <inheritdoc cref="BuddyHeap.Trim"/>
    public void Trim()
    {
        using (_gate.EnterScope())
        {
            _heap.Trim();
        }
    }

    /// <inheritdoc cref="BuddyHeap.Validate"/>
    public void Validate()
    {
        using (_gate.EnterScope())
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
        using (_gate.EnterScope())
        {
            return action(_heap);
        }
    }

    /// <summary>Disposes the engine (and the memory it owns). Calling it again is harmless.</summary>
    public void Dispose()
    {
        using (_gate.EnterScope())
        {
            _heap.Dispose();
        }
    }
}
