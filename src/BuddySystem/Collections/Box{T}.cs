namespace BuddySystem.Collections;

/// <summary>
/// One owned <typeparamref name="T"/> in memory from an <see cref="IAllocator"/>, freed on <see cref="Dispose"/>:
/// Rust's <c>Box&lt;T&gt;</c> (the tutorial's <c>Box::new(5)</c>).
/// </summary>
/// <typeparam name="T">An unmanaged type.</typeparam>
/// <remarks>Thread safety: none; a box belongs to one thread at a time. Dispose twice is harmless; any other use after
/// <see cref="Dispose"/> throws <see cref="ObjectDisposedException"/>.</remarks>
public sealed unsafe class Box<T> : IDisposable where T : unmanaged
{
    private readonly IAllocator _allocator;
    private T* _value;

    /// <summary>Allocates room for one <typeparamref name="T"/> and stores <paramref name="value"/> there (<c>Box::new</c>).</summary>
    /// <param name="allocator">Where the value lives.</param>
    /// <param name="value">The initial value.</param>
    /// <exception cref="ArgumentNullException"><paramref name="allocator"/> is null.</exception>
    /// <exception cref="HeapExhaustedException">The allocator returned null (the tutorial's <c>alloc_error_handler</c>).</exception>
    public Box(IAllocator allocator, T value)
    {
        ArgumentNullException.ThrowIfNull(allocator);
        _allocator = allocator;
        Layout layout = Layout.Of<T>();
        _value = (T*)allocator.Allocate(layout);
        if (_value == null)
        {
            throw HeapExhaustedException.For(allocator, layout);
        }

        *_value = value;
    }

    /// <summary>The boxed value, by reference (<c>*box</c> / <c>DerefMut</c>).</summary>
    /// <exception cref="ObjectDisposedException">The box was disposed.</exception>
    public ref T Value => ref *Pointer;

    /// <summary>Where the value lives.</summary>
    /// <exception cref="ObjectDisposedException">The box was disposed.</exception>
    public T* Pointer
    {
        get
        {
            ObjectDisposedException.ThrowIf(_value == null, this);
            return _value;
        }
    }

    /// <summary>Whether <see cref="Dispose"/> has run.</summary>
    public bool IsDisposed => _value == null;

    /// <summary>Frees the value's memory (Rust's <c>drop</c>). Calling it again is harmless.</summary>
    public void Dispose()
    {
        T* value = _value;
        if (value != null)
        {
            _value = null;
            _allocator.Deallocate(value, Layout.Of<T>());
        }
    }

    /// <summary>Formats the boxed value.</summary>
    /// <returns>The value's text, or <c>Box(disposed)</c>.</returns>
    public override string ToString() => _value == null ? "Box(disposed)" : $"Box({*_value})";
}
