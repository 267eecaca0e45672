namespace BuddySystem;

/// <summary>
/// The size and alignment of a memory request: Rust's <c>core::alloc::Layout</c>, the argument of
/// <c>GlobalAlloc::alloc</c> and <c>GlobalAlloc::dealloc</c>.
/// </summary>
/// <remarks>
/// <para>The alignment is always a power of two, and the size rounded up to the alignment never overflows
/// <see cref="nuint"/>. A size of zero is allowed: allocators hand out a valid, unique block for it.</para>
/// <para><c>default(Layout)</c> is size 0, alignment 1.</para>
/// </remarks>
public readonly struct Layout : IEquatable<Layout>
{
    // Stored as align - 1 so that default(Layout) is the valid layout (0, 1).
    private readonly nuint _alignMask;

    /// <summary>Creates a layout of <paramref name="size"/> bytes aligned to <paramref name="align"/>.</summary>
    /// <param name="size">Bytes wanted; may be zero.</param>
    /// <param name="align">Required alignment of the address; a power of two.</param>
    /// <exception cref="ArgumentException"><paramref name="align"/> is not a power of two (ParamName <c>align</c>),
    /// or <paramref name="size"/> rounded up to <paramref name="align"/> overflows (ParamName <c>size</c>).</exception>
    public Layout(nuint size, nuint align)
    {
        if (!BitOperations.IsPow2(align))
        {
            ThrowHelper.ThrowAlignNotPowerOfTwo(align);
        }

        if (size > nuint.MaxValue - (align - 1))
        {
            ThrowHelper.ThrowSizeOverflow(size, align);
        }

        Size = size;
        _alignMask = align - 1;
    }

    /// <summary>Bytes wanted.</summary>
    public nuint Size { get; }

    /// <summary>Required alignment of the address: a power of two, at least 1.</summary>
    public nuint Align => _alignMask + 1;

    /// <summary>The layout of one <typeparamref name="T"/>.</summary>
    /// <typeparam name="T">An unmanaged type.</typeparam>
    /// <returns>A layout of <c>sizeof(T)</c> bytes with <typeparamref name="T"/>'s natural alignment.</returns>
    public static unsafe Layout Of<T>() where T : unmanaged => new((nuint)sizeof(T), AlignOf<T>());

    /// <summary>The layout of <paramref name="count"/> consecutive <typeparamref name="T"/> values.</summary>
    /// <typeparam name="T">An unmanaged type.</typeparam>
    /// <param name="count">Number of elements; zero or more.</param>
    /// <returns>A layout of <c>count * sizeof(T)</c> bytes with <typeparamref name="T"/>'s natural alignment.</returns>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="count"/> is negative.</exception>
    /// <exception cref="ArgumentException">The total size overflows.</exception>
    public static unsafe Layout Array<T>(int count) where T : unmanaged
    {
        ArgumentOutOfRangeException.ThrowIfNegative(count);
        ulong bytes = (ulong)count * (ulong)sizeof(T);
        if (bytes > nuint.MaxValue)
        {
            ThrowHelper.ThrowSizeOverflow(nuint.MaxValue, AlignOf<T>());
        }

        return new Layout((nuint)bytes, AlignOf<T>());
    }

    /// <summary>The natural alignment of <typeparamref name="T"/>: the padding the runtime puts before it after one byte.</summary>
    internal static nuint AlignOf<T>() where T : unmanaged
        => (nuint)(Unsafe.SizeOf<AlignProbe<T>>() - Unsafe.SizeOf<T>());

    /// <inheritdoc/>
    public bool Equals(Layout other) => Size == other.Size && _alignMask == other._alignMask;

    /// <inheritdoc/>
    public override bool Equals(object? obj) => obj is Layout other && Equals(other);

    /// <inheritdoc/>
    public override int GetHashCode() => HashCode.Combine(Size, _alignMask);

    /// <summary>Formats the layout as <c>Layout(size: N, align: A)</c>.</summary>
    /// <returns>A readable description.</returns>
    public override string ToString() => $"Layout(size: {Size}, align: {Align})";

    /// <summary>Compares two layouts for equality.</summary>
    /// <param name="left">The first layout.</param>
    /// <param name="right">The second layout.</param>
    /// <returns><see langword="true"/> when size and alignment are equal.</returns>
    public static bool operator ==(Layout left, Layout right) => left.Equals(right);

    /// <summary>Compares two layouts for inequality.</summary>
    /// <param name="left">The first layout.</param>
    /// <param name="right">The second layout.</param>
    /// <returns><see langword="true"/> when size or alignment differ.</returns>
    public static bool operator !=(Layout left, Layout right) => !left.Equals(right);

#pragma warning disable CS0649, CA1823 // fields exist only so the runtime lays them out
    private struct AlignProbe<T> where T : unmanaged
    {
        public byte Pad;
        public T Value;
    }
#pragma warning restore CS0649, CA1823
}
