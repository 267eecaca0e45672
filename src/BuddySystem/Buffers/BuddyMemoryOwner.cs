using System.Buffers;

namespace BuddySystem.Buffers;

/// <summary>
/// One rented block of a <see cref="BuddyMemoryPool"/>: native memory that never moves, so pinning is free and no GC handle
/// is needed.
/// </summary>
/// <remarks>Dispose returns the block exactly once, whichever thread gets there first; any later access throws
/// <see cref="ObjectDisposedException"/> and a later Dispose does nothing. By default an owner serves one rent; only with
/// <see cref="BuddyMemoryPoolOptions.RecycledOwners"/> above 0 does the pool hand it out again with another block, after
/// which a stale reference is the new renter's.</remarks>
internal sealed unsafe class BuddyMemoryOwner : MemoryManager<byte>
{
    private readonly BuddyMemoryPool _pool;
    private int _length;

    // The pinned array the block lies in, when the pool's heap is over a PinnedArrayRegion; null for native memory.
    private byte[]? _array;
    private int _arrayOffset;

    // An integer so Dispose can claim the block atomically; 0 while the owner is disposed (or waits to be reused).
    private nint _block;

    internal BuddyMemoryOwner(BuddyMemoryPool pool) => _pool = pool;

    /// <summary>Gives a new or recycled owner its block. Only the renting thread sees the owner until <c>Rent</c> returns it;
    /// the block is published last, so an owner that has a block has its length too.</summary>
    internal void Arm(byte* block, int length, ArraySegment<byte> segment)
    {
        _length = length;
        _array = segment.Array;
        _arrayOffset = segment.Offset;
        Volatile.Write(ref _block, (nint)block);
    }

    public override Memory<byte> Memory
    {
        get
        {
            _ = Block;
            return CreateMemory(_length);
        }
    }

    private byte* Block
    {
        get
        {
            nint block = Volatile.Read(ref _block);
            if (block == 0)
            {
                ThrowHelper.ThrowObjectDisposed(this);
            }

            return (byte*)block;
        }
    }

    public override Span<byte> GetSpan() => new(Block, _length);

    public override MemoryHandle Pin(int elementIndex = 0)
    {
        byte* block = Block;
        ArgumentOutOfRangeException.ThrowIfGreaterThan((uint)elementIndex, (uint)_length, nameof(elementIndex));

        // Native memory never moves: the handle only carries the address.
        return new MemoryHandle(block + elementIndex);
    }

    protected override bool TryGetArray(out ArraySegment<byte> segment)
    {
        _ = Block;
        segment = _array is null ? default : new ArraySegment<byte>(_array, _arrayOffset, _length);
        return _array is not null;
    }

    public override void Unpin()
    {
    }

    protected override void Dispose(bool disposing)
    {
        nint block = Interlocked.Exchange(ref _block, 0);
        if (block != 0)
        {
            // The length is read before the owner goes back to the pool: once recycled, another Rent may re-arm it.
            _pool.Return(this, (byte*)block, _length);
        }
    }
}
