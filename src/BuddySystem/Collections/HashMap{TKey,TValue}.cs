using System.Collections;

namespace BuddySystem.Collections;

/// <summary>
/// A hash table from <typeparamref name="TKey"/> to <typeparamref name="TValue"/> in memory from an
/// <see cref="IAllocator"/>: Rust's <c>std::collections::HashMap&lt;K, V&gt;</c>.
/// </summary>
/// <typeparam name="TKey">An unmanaged key type compared with <see cref="IEquatable{T}"/> (no boxing); it should override
/// <see cref="object.GetHashCode"/>, as the primitive types do, or the runtime's slow field-by-field hash is used.</typeparam>
/// <typeparam name="TValue">An unmanaged value type.</typeparam>
/// <remarks>
/// <para><b>Design.</b> Open addressing with linear probing over one block of slots, a power of two in number. Each slot
/// holds the key's mixed hash (0 marks an empty slot), the key and the value. The home slot is taken from the high bits of
/// the hash times the golden ratio (Fibonacci hashing), so poor <see cref="object.GetHashCode"/> values still spread.
/// <see cref="Remove"/> shifts the following entries of the probe run back instead of leaving tombstones, so lookups never
/// slow down with deletions. The table doubles through a fresh block when it would be more than 3/4 full. An empty map owns
/// no memory.</para>
/// <para><b>Failure.</b> When the allocator returns null the operation throws <see cref="HeapExhaustedException"/> and the
/// map is unchanged.</para>
/// <para>Thread safety: none. Dispose twice is harmless; any other use after <see cref="Dispose"/> throws
/// <see cref="ObjectDisposedException"/>. Changing the map while enumerating it throws <see cref="InvalidOperationException"/>
/// from the enumerator.</para>
/// </remarks>
public sealed unsafe class HashMap<TKey, TValue> : IDisposable, IEnumerable<KeyValuePair<TKey, TValue>>
    where TKey : unmanaged, IEquatable<TKey>
    where TValue : unmanaged
{
    private const int MinCapacity = 8;

    private readonly IAllocator _allocator;
    private Slot* _slots;
    private int _capacity;
    private int _shift;
    private int _count;
    private int _version;
    private bool _disposed;

    /// <summary>Creates an empty map (<c>HashMap::new</c>), or one that holds <paramref name="capacity"/> entries without growing (<c>with_capacity</c>).</summary>
    /// <param name="allocator">Where the entries live.</param>
    /// <param name="capacity">Entries to make room for now; zero allocates nothing.</param>
    /// <exception cref="ArgumentNullException"><paramref name="allocator"/> is null.</exception>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="capacity"/> is negative.</exception>
    /// <exception cref="HeapExhaustedException">The allocator could not serve the table.</exception>
    public HashMap(IAllocator allocator, int capacity = 0)
    {
        ArgumentNullException.ThrowIfNull(allocator);
        ArgumentOutOfRangeException.ThrowIfNegative(capacity);
        _allocator = allocator;
        if (capacity > 0)
        {
            Resize(SlotsFor(capacity));
        }
    }

    /// <summary>Entries in the map (<c>len</c>).</summary>
    public int Count
    {
        get
        {
            ThrowIfDisposed();
            return _count;
        }
    }

    /// <summary>Entries the map holds before it grows.</summary>
    public int Capacity
    {
        get
        {
            ThrowIfDisposed();
            return MaxCountFor(_capacity);
        }
    }

    /// <summary>The value of <paramref name="key"/> (<c>map[&amp;key]</c>); setting inserts or overwrites (<c>insert</c>).</summary>
    /// <param name="key">The key.</param>
    /// <exception cref="KeyNotFoundException">Getting a key that is not in the map.</exception>
    /// <exception cref="HeapExhaustedException">Setting a new key needed a larger table that the allocator could not serve; nothing changed.</exception>
    public TValue this[TKey key]
    {
        get
        {
            ThrowIfDisposed();
            int index = Find(key, Hash(key));
            if (index < 0)
            {
                ThrowKeyNotFound(key);
            }

            return _slots[index].Value;
        }

        set
        {
            ThrowIfDisposed();
            uint hash = Hash(key);
            int index = Find(key, hash);
            if (index >= 0)
            {
                _slots[index].Value = value;
                _version++;
                return;
            }

            InsertNew(key, value, hash);
        }
    }

    /// <summary>Adds <paramref name="key"/> with <paramref name="value"/> unless the key is already there (Rust's <c>try_insert</c>).</summary>
    /// <param name="key">The key.</param>
    /// <param name="value">Its value.</param>
    /// <returns><see langword="true"/> when added; <see langword="false"/> when the key was present (its value is unchanged).</returns>
    /// <exception cref="HeapExhaustedException">The table had to grow and the allocator could not serve it; nothing changed.</exception>
    public bool TryAdd(TKey key, TValue value)
    {
        ThrowIfDisposed();
        uint hash = Hash(key);
        if (Find(key, hash) >= 0)
        {
            return false;
        }

        InsertNew(key, value, hash);
        return true;
    }

    /// <summary>Looks up <paramref name="key"/> (<c>get</c>).</summary>
    /// <param name="key">The key.</param>
    /// <param name="value">Its value when found; default otherwise.</param>
    /// <returns><see langword="true"/> when the key is in the map.</returns>
    public bool TryGetValue(TKey key, out TValue value)
    {
        ThrowIfDisposed();
        int index = Find(key, Hash(key));
        if (index < 0)
        {
            value = default;
            return false;
        }

        value = _slots[index].Value;
        return true;
    }

    /// <summary>Whether <paramref name="key"/> is in the map (<c>contains_key</c>).</summary>
    /// <param name="key">The key.</param>
    /// <returns><see langword="true"/> when present.</returns>
    public bool ContainsKey(TKey key)
    {
        ThrowIfDisposed();
        return Find(key, Hash(key)) >= 0;
    }

    /// <summary>Removes <paramref name="key"/> (<c>remove</c>); the table keeps its size.</summary>
    /// <param name="key">The key.</param>
    /// <returns><see langword="true"/> when the key was there.</returns>
    public bool Remove(TKey key)
    {
        ThrowIfDisposed();
        int index = Find(key, Hash(key));
        if (index < 0)
        {
            return false;
        }

        // Backward-shift deletion: move later members of the probe run into the hole while their home slot is not
        // after the hole, so every entry stays reachable from its home without tombstones.
        int mask = _capacity - 1;
        int hole = index;
        int next = (hole + 1) & mask;
        while (_slots[next].Hash != 0)
        {
            int home = Home(_slots[next].Hash);
            if (((next - home) & mask) >= ((next - hole) & mask))
            {
                _slots[hole] = _slots[next];
                hole = next;
            }

            next = (next + 1) & mask;
        }

        _slots[hole].Hash = 0;
        _count--;
        _version++;
        return true;
    }

    /// <summary>Removes every entry and keeps the table (<c>clear</c>).</summary>
    public void Clear()
    {
        ThrowIfDisposed();
        if (_slots != null)
        {
            new Span<Slot>(_slots, _capacity).Clear();
        }

        _count = 0;
        _version++;
    }

    /// <summary>An enumerator over the entries in table order that allocates nothing on the GC heap (<c>iter</c>).</summary>
    /// <returns>The enumerator.</returns>
    /// <exception cref="ObjectDisposedException">The map was disposed.</exception>
    public Enumerator GetEnumerator()
    {
        ThrowIfDisposed();
        return new Enumerator(this);
    }

    IEnumerator<KeyValuePair<TKey, TValue>> IEnumerable<KeyValuePair<TKey, TValue>>.GetEnumerator() => GetEnumerator();

    IEnumerator IEnumerable.GetEnumerator() => GetEnumerator();

    /// <summary>Frees the table (Rust's <c>drop</c>). Calling it again is harmless.</summary>
    public void Dispose()
    {
        if (_disposed)
        {
            return;
        }

        _disposed = true;
        if (_slots != null)
        {
            _allocator.Deallocate(_slots, Layout.Array<Slot>(_capacity));
            _slots = null;
        }

        _count = 0;
        _capacity = 0;
        _version++;
    }

    private void InsertNew(TKey key, TValue value, uint hash)
    {
        if (_count + 1 > MaxCountFor(_capacity))
        {
            Resize(_capacity == 0 ? MinCapacity : checked(_capacity * 2));
        }

        Place(key, value, hash);
        _count++;
        _version++;
    }

    private void Place(TKey key, TValue value, uint hash)
    {
        int mask = _capacity - 1;
        int index = Home(hash);
        while (_slots[index].Hash != 0)
        {
            index = (index + 1) & mask;
        }

        Slot* slot = _slots + index;
        slot->Hash = hash;
        slot->Key = key;
        slot->Value = value;
    }

    private int Find(TKey key, uint hash)
    {
        if (_count == 0)
        {
            return -1;
        }

        int mask = _capacity - 1;
        for (int index = Home(hash); ; index = (index + 1) & mask)
        {
            uint stored = _slots[index].Hash;
            if (stored == 0)
            {
                return -1;
            }

            if (stored == hash && _slots[index].Key.Equals(key))
            {
                return index;
            }
        }
    }

    private void Resize(int capacity)
    {
        Layout layout = Layout.Array<Slot>(capacity);
        var slots = (Slot*)_allocator.Allocate(layout);
        if (slots == null)
        {
            throw HeapExhaustedException.For(_allocator, layout);
        }

        new Span<Slot>(slots, capacity).Clear();
        Slot* old = _slots;
        int oldCapacity = _capacity;
        _slots = slots;
        _capacity = capacity;
        _shift = 32 - BitOperations.Log2((uint)capacity);
        for (int i = 0; i < oldCapacity; i++)
        {
            if (old[i].Hash != 0)
            {
                Place(old[i].Key, old[i].Value, old[i].Hash);
            }
        }

        if (old != null)
        {
            _allocator.Deallocate(old, Layout.Array<Slot>(oldCapacity));
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private int Home(uint hash) => (int)((hash * 0x9E3779B9u) >> _shift);

    // Bit 31 set so that 0 can mark an empty slot.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static uint Hash(TKey key) => (uint)key.GetHashCode() | 0x8000_0000u;

    private static int MaxCountFor(int capacity) => capacity - (capacity >> 2);

    private static int SlotsFor(int count)
    {
        // Room for count entries at a load of at most 3/4.
        long needed = (long)count * 4 / 3 + 1;
        if (needed > 1 << 30)
        {
            throw new OutOfMemoryException($"A HashMap cannot hold {count} entries.");
        }

        return (int)Math.Max(MinCapacity, BitOperations.RoundUpToPowerOf2((uint)needed));
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private void ThrowIfDisposed() => ObjectDisposedException.ThrowIf(_disposed, this);

    [System.Diagnostics.CodeAnalysis.DoesNotReturn]
    private static void ThrowKeyNotFound(TKey key) => throw new KeyNotFoundException($"The key '{key}' is not in the map.");

    private struct Slot
    {
        public uint Hash;
        public TKey Key;
        public TValue Value;
    }

    /// <summary>Walks the entries of a <see cref="HashMap{TKey, TValue}"/> without allocating.</summary>
    public struct Enumerator : IEnumerator<KeyValuePair<TKey, TValue>>
    {
        private readonly HashMap<TKey, TValue> _map;
        private readonly int _version;
        private int _index;

        internal Enumerator(HashMap<TKey, TValue> map)
        {
            _map = map;
            _version = map._version;
            _index = -1;
        }

        /// <summary>The entry at the current position.</summary>
        public readonly KeyValuePair<TKey, TValue> Current
        {
            get
            {
                Slot* slot = _map._slots + _index;
                return new KeyValuePair<TKey, TValue>(slot->Key, slot->Value);
            }
        }

        readonly object IEnumerator.Current => Current;

        /// <summary>Moves to the next entry.</summary>
        /// <returns><see langword="false"/> after the last entry.</returns>
        /// <exception cref="InvalidOperationException">The map changed (or was disposed) since the enumerator was made.</exception>
        public bool MoveNext()
        {
            if (_version != _map._version)
            {
                throw new InvalidOperationException("The map changed while it was being enumerated.");
            }

            while (++_index < _map._capacity)
            {
                if (_map._slots[_index].Hash != 0)
                {
                    return true;
                }
            }

            _index = _map._capacity;
            return false;
        }

        /// <summary>Starts over.</summary>
        public void Reset() => _index = -1;

        /// <summary>Nothing to release.</summary>
        public readonly void Dispose()
        {
        }
    }
}
