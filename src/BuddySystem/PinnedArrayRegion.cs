namespace BuddySystem;

/// <summary>
/// A region inside a byte array on the pinned object heap: memory to hand to <see cref="BuddyHeap.AddRegion(void*, nuint)"/>
/// when the blocks must also be reachable as array segments, as Kestrel's socket transport needs for scatter/gather sends.
/// </summary>
/// <remarks>
/// <para>The array is allocated pinned (<see cref="GC.AllocateUninitializedArray{T}(int, bool)"/>), so it never moves and no
/// GC handle is needed; the garbage collector owns it and frees it when the last reference goes, so there is nothing to
/// dispose. It holds at most <see cref="Array.MaxLength"/> bytes.</para>
/// <para>Thread safety: immutable; every member is safe from any thread.</para>
/// </remarks>
public sealed unsafe class PinnedArrayRegion
{
    private readonly byte[] _array;
    private readonly int _offset;

    /// <summary>Allocates a pinned array holding <paramref name="size"/> bytes that start at a multiple of <paramref name="alignment"/>.</summary>
    /// <param name="size">Bytes in the region; at least 1.</param>
    /// <param name="alignment">A power of two; the region's start is a multiple of it (the array is larger by up to alignment - 1 bytes).</param>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="size"/> is not positive, or size plus alignment exceeds <see cref="Array.MaxLength"/>.</exception>
    /// <exception cref="ArgumentException"><paramref name="alignment"/> is not a power of two.</exception>
    public PinnedArrayRegion(int size, int alignment = 4096)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(size);
        if (alignment <= 0 || !BitOperations.IsPow2(alignment))
        {
            ThrowHelper.ThrowAlignNotPowerOfTwo((nuint)Math.Max(alignment, 0));
        }

        ArgumentOutOfRangeException.ThrowIfGreaterThan((long)size + alignment - 1, Array.MaxLength, nameof(size));
        _array = GC.AllocateUninitializedArray<byte>(size + alignment - 1, pinned: true);
        nuint start = (nuint)Unsafe.AsPointer(ref MemoryMarshal.GetArrayDataReference(_array));
        _offset = (int)((nuint)(-(nint)start) & (nuint)(alignment - 1));
        Size = size;
    }

    /// <summary>The first byte of the region.</summary>
    public void* Pointer => Unsafe.AsPointer(ref Unsafe.Add(ref MemoryMarshal.GetArrayDataReference(_array), _offset));

    /// <summary>Bytes in the region.</summary>
    public int Size { get; }

    /// <summary>The array segment covering <paramref name="length"/> bytes at <paramref name="address"/>, when they lie in the region.</summary>
    /// <param name="address">Any address.</param>
    /// <param name="length">Bytes from it.</param>
    /// <param name="segment">The segment of the pinned array; default when not in the region.</param>
    /// <returns><see langword="true"/> when [address, address + length) lies in the region.</returns>
    public bool TryGetSegment(void* address, int length, out ArraySegment<byte> segment)
    {
        nuint offset = (nuint)address - (nuint)Pointer;
        if (length >= 0 && offset <= (nuint)Size && (nuint)length <= (nuint)Size - offset)
        {
            segment = new ArraySegment<byte>(_array, _offset + (int)offset, length);
            return true;
        }

        segment = default;
        return false;
    }
}
