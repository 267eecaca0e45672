namespace BuddySystem.Collections;

/// <summary>
/// A <typeparamref name="T"/> shared by handles on any threads, freed when the last handle is disposed: Rust's
/// <c>std::sync::Arc&lt;T&gt;</c> (strong count only; there is no <c>Weak</c>).
/// </summary>
/// <typeparam name="T">An unmanaged type.</typeparam>
/// <remarks>
/// <para>The count and the value live in one block from the allocator, and the count changes with
/// <see cref="Interlocked"/> operations: <see cref="Clone"/> adds one (<c>Arc::clone</c>), <see cref="Dispose"/> takes one
/// away, and the handle that takes it to zero frees the block. As in Rust, a handle may only be cloned while it is alive,
/// so the count never rises from zero.</para>
/// <para>Thread safety: different handles may be cloned and disposed on different threads at once, and one handle may be
/// disposed from several threads at once (only the first counts). The allocator must then be thread-safe too
/// (<see cref="LockedHeap"/>), since the last dispose frees on whichever thread runs it. The value itself is not
/// synchronised: read it, or change it through <see cref="Pointer"/> with <see cref="Interlocked"/> or a lock, as Rust
/// requires <c>Sync</c> contents.</para>
/// <para>Disposing a handle twice is harmless; any other use of a disposed handle throws <see cref="ObjectDisposedException"/>.</para>
/// </remarks>
public sealed unsafe class Arc<T> : IDisposable where T : unmanaged
{
    private readonly IAllocator _allocator;

    // An integer so Dispose can claim the handle atomically.
    private nint _box;

    /// <summary>Allocates the shared block and stores <paramref name="value"/> in it with a count of one (<c>Arc::new</c>).</summary>
    /// <param name="allocator">Where the value lives; thread-safe when handles go to other threads.</param>
    /// <param name="value">The initial value.</param>
    /// <exception cref="ArgumentNullException"><paramref name="allocator"/> is null.</exception>
    /// <exception cref="HeapExhaustedException">The allocator returned null.</exception>
    public Arc(IAllocator allocator, T value)
    {
        ArgumentNullException.ThrowIfNull(allocator);
        RcBox<T>* box = RcBox<T>.Create(allocator, value);
        _allocator = allocator;
        _box = (nint)box;
    }

    private Arc(IAllocator allocator, RcBox<T>* box)
    {
        _allocator = allocator;
        _box = (nint)box;
    }

    /// <summary>The shared value (<c>*arc</c>); read-only, as Rust's <c>Deref</c> gives <c>&amp;T</c>.</summary>
    /// <exception cref="ObjectDisposedException">This handle was disposed.</exception>
    public ref readonly T Value => ref Box->Value;

    /// <summary>The shared value's address, for synchronised mutation (for example <see cref="Interlocked.Increment(ref long)"/>).</summary>
    /// <exception cref="ObjectDisposedException">This handle was disposed.</exception>
    public T* Pointer => &Box->Value;

    /// <summary>Handles alive on the shared value (<c>Arc::strong_count</c>); may change at once when other threads clone or dispose.</summary>
    /// <exception cref="ObjectDisposedException">This handle was disposed.</exception>
    public long StrongCount => Volatile.Read(ref Box->Strong);

    /// <summary>Whether this handle was disposed.</summary>
    public bool IsDisposed => Volatile.Read(ref _box) == 0;

    private RcBox<T>* Box
    {
        get
        {
            nint box = Volatile.Read(ref _box);
            ObjectDisposedException.ThrowIf(box == 0, this);
            return (RcBox<T>*)box;
        }
    }

    /// <summary>Returns another handle to the same value and adds one to the count atomically (<c>Arc::clone</c>).</summary>
    /// <returns>A new handle, to be disposed on its own.</returns>
    /// <exception cref="ObjectDisposedException">This handle was disposed.</exception>
    public Arc<T> Clone()
    {
        RcBox<T>* box = Box;
        Interlocked.Increment(ref box->Strong);
        return new Arc<T>(_allocator, box);
    }

    /// <summary>Whether two handles share one value (<c>Arc::ptr_eq</c>).</summary>
    /// <param name="other">Another handle.</param>
    /// <returns><see langword="true"/> when both point at the same block.</returns>
    /// <exception cref="ObjectDisposedException">Either handle was disposed.</exception>
    public bool SharesValueWith(Arc<T> other)
    {
        ArgumentNullException.ThrowIfNull(other);
        return Box == other.Box;
    }

    /// <summary>Gives up this handle (<c>drop</c>); the last handle frees the block. Calling it again, from any thread, is harmless.</summary>
    public void Dispose()
    {
        var box = (RcBox<T>*)Interlocked.Exchange(ref _box, 0);
        if (box != null && Interlocked.Decrement(ref box->Strong) == 0)
        {
            _allocator.Deallocate(box, Layout.Of<RcBox<T>>());
        }
    }

    /// <summary>Formats the shared value.</summary>
    /// <returns>The value's text, or <c>Arc(disposed)</c>.</returns>
    public override string ToString()
    {
        var box = (RcBox<T>*)Volatile.Read(ref _box);
        return box == null ? "Arc(disposed)" : $"Arc({box->Value})";
    }
}
