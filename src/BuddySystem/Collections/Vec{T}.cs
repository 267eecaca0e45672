using System.Collections;

namespace BuddySystem.Collections;

/// <summary>
/// A growable array of <typeparamref name="T"/> in memory from an <see cref="IAllocator"/>: Rust's <c>Vec&lt;T&gt;</c>
/// (the tutorial's <c>vec</c> with 0..499 pushed).
/// </summary>
/// <typeparam name="T">An unmanaged type.</typeparam>
/// <remarks>
/// <para>The buffer grows by doubling through <see cref="IAllocator.Reallocate"/>, which a buddy heap serves in place
/// when the new size fits the same block. An empty vector owns no memory.</para>
/// <para>Thread safety: none. Dispose twice is harmless; any other use after <see cref="Dispose"/> throws
/// <see cref="ObjectDisposedException"/>. When the allocator returns null, the operation throws
/// <see cref="HeapExhaustedException"/> and the vector is unchanged.</para>
/// </remarks>
public sealed unsafe class Vec<T> : IDisposable, IEnumerable<T> where T : unmanaged
{
    private readonly IAllocator _allocator;
    private T* _items;
    private int _count;
    private int _capacity;
    private bool _disposed;

    /// <summary>Creates an empty vector (<c>Vec::new</c>) or one with room for <paramref name="capacity"/> items (<c>Vec::with_capacity</c>).</summary>
    /// <param name="allocator">Where the items live.</param>
    /// <param name="capacity">Items to make room for now; zero allocates nothing.</param>
    /// <exception cref="ArgumentNullException"><paramref name="allocator"/> is null.</exception>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="capacity"/> is negative.</exception>
    /// <exception cref="HeapExhaustedException">The allocator could not serve the capacity.</exception>
    public Vec(IAllocator allocator, int capacity = 0)
    {
        ArgumentNullException.ThrowIfNull(allocator);
        ArgumentOutOfRangeException.ThrowIfNegative(capacity);
        _allocator = allocator;
        if (capacity > 0)
        {
            Grow(capacity);
        }
    }

    /// <summary>Number of items (<c>len</c>).</summary>
    public int Count
    {
        get
        {
            ThrowIfDisposed();
            return _count;
        }
    }

    /// <summary>Items the buffer holds without growing.</summary>
    public int Capacity
    {
        get
        {
            ThrowIfDisposed();
            return _capacity;
        }
    }

    /// <summary>The buffer's address; null while the capacity is zero.</summary>
    public T* Pointer
    {
        get
        {
            ThrowIfDisposed();
            return _items;
        }
    }

    /// <summary>The item at <paramref name="index"/>, by reference.</summary>
    /// <param name="index">0 ≤ index &lt; <see cref="Count"/>.</param>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="index"/> is out of range.</exception>
    public ref T this[int index]
    {
        get
        {
            ThrowIfDisposed();
            if ((uint)index >= (uint)_count)
            {
                ThrowIndex(index);
            }

            return ref _items[index];
        }
    }

    /// <summary>Appends <paramref name="item"/> (<c>push</c>), doubling the buffer when full.</summary>
    /// <param name="item">The item.</param>
    /// <exception cref="HeapExhaustedException">The buffer had to grow and the allocator could not serve it; nothing changed.</exception>
    public void Push(T item)
    {
        ThrowIfDisposed();
        if (_count == _capacity)
        {
            Grow(checked(_count + 1));
        }

        _items[_count++] = item;
    }

    /// <summary>Inserts <paramref name="item"/> at <paramref name="index"/>, shifting later items up (<c>insert</c>).</summary>
    /// <param name="index">0 ≤ index ≤ <see cref="Count"/>.</param>
    /// <param name="item">The item.</param>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="index"/> is out of range.</exception>
    /// <exception cref="HeapExhaustedException">The buffer could not grow; nothing changed.</exception>
    public void Insert(int index, T item)
    {
        ThrowIfDisposed();
        if ((uint)index > (uint)_count)
        {
            ThrowIndex(index);
        }

        if (_count == _capacity)
        {
            Grow(checked(_count + 1));
        }

        new Span<T>(_items + index, _count - index).CopyTo(new Span<T>(_items + index + 1, _count - index));
        _items[index] = item;
        _count++;
    }

    /// <summary>Removes the item at <paramref name="index"/>, shifting later items down (<c>remove</c>).</summary>
    /// <param name="index">0 ≤ index &lt; <see cref="Count"/>.</param>
    /// <returns>The removed item.</returns>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="index"/> is out of range.</exception>
    public T RemoveAt(int index)
    {
        ThrowIfDisposed();
        if ((uint)index >= (uint)_count)
        {
            ThrowIndex(index);
        }

        T removed = _items[index];
        new Span<T>(_items + index + 1, _count - index - 1).CopyTo(new Span<T>(_items + index, _count - index - 1));
        _count--;
        return removed;
    }

    /// <summary>Removes the last item (<c>pop</c>).</summary>
    /// <param name="item">The removed item; default when the vector was empty.</param>
    /// <returns><see langword="false"/> when the vector was empty (Rust's <c>None</c>).</returns>
    public bool TryPop(out T item)
    {
        ThrowIfDisposed();
        if (_count == 0)
        {
            item = default;
            return false;
        }

        item = _items[--_count];
        return true;
    }

    /// <summary>Removes every item and keeps the buffer (<c>clear</c>).</summary>
    public void Clear()
    {
        ThrowIfDisposed();
        _count = 0;
    }

    /// <summary>Makes room for at least <paramref name="additional"/> more items (<c>reserve</c>).</summary>
    /// <param name="additional">Items to add without growing again.</param>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="additional"/> is negative.</exception>
    /// <exception cref="HeapExhaustedException">The buffer could not grow; nothing changed.</exception>
    public void Reserve(int additional)
    {
        ThrowIfDisposed();
        ArgumentOutOfRangeException.ThrowIfNegative(additional);
        int needed = checked(_count + additional);
        if (needed > _capacity)
        {
            Grow(needed);
        }
    }

    /// <summary>The items as a span over the native buffer (<c>as_slice</c>); valid until the vector grows or is disposed.</summary>
    /// <returns>A span of <see cref="Count"/> items.</returns>
    public Span<T> AsSpan()
    {
        ThrowIfDisposed();
        return new Span<T>(_items, _count);
    }

    /// <summary>The room past <see cref="Count"/> up to <see cref="Capacity"/> (<c>spare_capacity_mut</c>); its contents are unspecified.</summary>
    /// <returns>A span of <c>Capacity - Count</c> items; valid until the vector grows or is disposed.</returns>
    public Span<T> SpareCapacity()
    {
        ThrowIfDisposed();
        return new Span<T>(_items + _count, _capacity - _count);
    }

    /// <summary>Counts <paramref name="count"/> more items as written into <see cref="SpareCapacity"/> (a checked <c>set_len(len + count)</c>).</summary>
    /// <param name="count">Items written; 0 ≤ count ≤ Capacity - Count.</param>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="count"/> is negative or more than the spare capacity.</exception>
    public void CommitSpare(int count)
    {
        ThrowIfDisposed();
        if ((uint)count > (uint)(_capacity - _count))
        {
            throw new ArgumentOutOfRangeException(nameof(count), count, "More items than the spare capacity holds.");
        }

        _count += count;
    }

    /// <summary>An enumerator over the items that allocates nothing on the GC heap.</summary>
    /// <returns>The enumerator.</returns>
    public Span<T>.Enumerator GetEnumerator() => AsSpan().GetEnumerator();

    IEnumerator<T> IEnumerable<T>.GetEnumerator()
    {
        for (int i = 0; i < Count; i++)
        {
            yield return this[i];
        }
    }

    IEnumerator IEnumerable.GetEnumerator() => ((IEnumerable<T>)this).GetEnumerator();

    /// <summary>Frees the buffer (Rust's <c>drop</c>). Calling it again is harmless.</summary>
    public void Dispose()
    {
        if (_disposed)
        {
            return;
        }

        _disposed = true;
        if (_items != null)
        {
            _allocator.Deallocate(_items, Layout.Array<T>(_capacity));
            _items = null;
        }

        _count = 0;
        _capacity = 0;
    }

    private void Grow(int minimum)
    {
        int capacity = (int)Math.Min(Math.Max((long)_capacity * 2, Math.Max(minimum, 4)), Array.MaxLength);
        if (capacity < minimum)
        {
            throw new OutOfMemoryException($"A Vec cannot hold {minimum} items.");
        }

        Layout layout = Layout.Array<T>(capacity);
        T* items = _items == null
            ? (T*)_allocator.Allocate(layout)
            : (T*)_allocator.Reallocate(_items, Layout.Array<T>(_capacity), layout.Size);
        if (items == null)
        {
            throw HeapExhaustedException.For(_allocator, layout);
        }

        _items = items;
        _capacity = capacity;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private void ThrowIfDisposed() => ObjectDisposedException.ThrowIf(_disposed, this);

    [System.Diagnostics.CodeAnalysis.DoesNotReturn]
    private static void ThrowIndex(int index) => throw new ArgumentOutOfRangeException(nameof(index), index, "Index is outside the vector.");
}
