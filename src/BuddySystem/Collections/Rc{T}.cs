namespace BuddySystem.Collections;

/// <summary>
/// A <typeparamref name="T"/> shared by several handles on one thread, freed when the last handle is disposed: Rust's
/// <c>std::rc::Rc&lt;T&gt;</c> (strong count only; there is no <c>Weak</c>).
/// </summary>
/// <typeparam name="T">An unmanaged type.</typeparam>
/// <remarks>
/// <para>The count and the value live in one block from the allocator. <see cref="Clone"/> returns a new handle and adds one
/// to the count (<c>Rc::clone</c>); <see cref="Dispose"/> of a handle takes one away (<c>drop</c>), and the handle that takes
/// it to zero frees the block. Each handle is disposed on its own: disposing a handle twice is harmless and counts once;
/// any other use of a disposed handle throws <see cref="ObjectDisposedException"/>.</para>
/// <para>Thread safety: none. The count is a plain integer, so all handles must stay on one thread at a time; share across
/// threads with <see cref="Arc{T}"/>.</para>
/// </remarks>
public sealed unsafe class Rc<T> : IDisposable where T : unmanaged
{
    private readonly IAllocator _allocator;
    private RcBox<T>* _box;

    /// <summary>Allocates the shared block and stores <paramref name="value"/> in it with a count of one (<c>Rc::new</c>).</summary>
    /// <param name="allocator">Where the value lives.</param>
    /// <param name="value">The initial value.</param>
    /// <exception cref="ArgumentNullException"><paramref name="allocator"/> is null.</exception>
    /// <exception cref="HeapExhaustedException">The allocator returned null.</exception>
    public Rc(IAllocator allocator, T value)
    {
        ArgumentNullException.ThrowIfNull(allocator);
        RcBox<T>* box = RcBox<T>.Create(allocator, value);
        _allocator = allocator;
        _box = box;
    }

    private Rc(IAllocator allocator, RcBox<T>* box)
    {
        _allocator = allocator;
        _box = box;
    }

    /// <summary>The shared value (<c>*rc</c>); read-only, as Rust's <c>Deref</c> gives <c>&amp;T</c>.</summary>
    /// <exception cref="ObjectDisposedException">This handle was disposed.</exception>
    public ref readonly T Value => ref Box->Value;

    /// <summary>The shared value's address, for deliberate mutation through every handle (Rust's <c>Cell</c>/<c>RefCell</c> territory).</summary>
    /// <exception cref="ObjectDisposedException">This handle was disposed.</exception>
    public T* Pointer => &Box->Value;

    /// <summary>Handles alive on the shared value (<c>Rc::strong_count</c>).</summary>
    /// <exception cref="ObjectDisposedException">This handle was disposed.</exception>
    public long StrongCount => Box->Strong;

    /// <summary>Whether this handle was disposed.</summary>
    public bool IsDisposed => _box == null;

    private RcBox<T>* Box
    {
        get
        {
            ObjectDisposedException.ThrowIf(_box == null, this);
            return _box;
        }
    }

    /// <summary>Returns another handle to the same value and adds one to the count (<c>Rc::clone</c>); allocates nothing from the heap.</summary>
    /// <returns>A new handle, to be disposed on its own.</returns>
    /// <exception cref="ObjectDisposedException">This handle was disposed.</exception>
    public Rc<T> Clone()
    {
        RcBox<T>* box = Box;
        box->Strong++;
        return new Rc<T>(_allocator, box);
    }

    /// <summary>Whether two handles share one value (<c>Rc::ptr_eq</c>).</summary>
    /// <param name="other">Another handle.</param>
    /// <returns><see langword="true"/> when both point at the same block.</returns>
    /// <exception cref="ObjectDisposedException">Either handle was disposed.</exception>
    public bool SharesValueWith(Rc<T> other)
    {
        ArgumentNullException.ThrowIfNull(other);
        return Box == other.Box;
    }

    /// <summary>Gives up this handle (<c>drop</c>); the last handle frees the block. Calling it again is harmless.</summary>
    public void Dispose()
    {
        RcBox<T>* box = _box;
        if (box == null)
        {
            return;
        }

        _box = null;
        if (--box->Strong == 0)
        {
            _allocator.Deallocate(box, Layout.Of<RcBox<T>>());
        }
    }

    /// <summary>Formats the shared value.</summary>
    /// <returns>The value's text, or <c>Rc(disposed)</c>.</returns>
    public override string ToString() => _box == null ? "Rc(disposed)" : $"Rc({_box->Value})";
}
