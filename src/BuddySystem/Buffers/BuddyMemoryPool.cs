using System.Buffers;

namespace BuddySystem.Buffers;

/// <summary>
/// A <see cref="MemoryPool{T}"/> of bytes whose buffers are blocks of a thread-safe BuddySystem heap: native memory,
/// never moved, never tracked by a GC handle, for System.IO.Pipelines, Kestrel and anything else that rents
/// <see cref="IMemoryOwner{T}"/>.
/// </summary>
/// <remarks>
/// <para><b>Sizes.</b> A buffer is one heap block: the requested size rounded up to a power of two, at least
/// <see cref="MinBufferSize"/> bytes, and its <see cref="IMemoryOwner{T}.Memory"/> spans the whole block (at least what
/// was asked). <c>Rent(-1)</c> gives <see cref="BuddyMemoryPoolOptions.DefaultBufferSize"/> (4096 by default).
/// <see cref="MaxBufferSize"/> is the largest request the pool accepts; a request up to it can still fail with
/// <see cref="HeapExhaustedException"/> when the heap is full or fragmented.</para>
/// <para><b>Lifetime.</b> Each owner returns its block to the heap on <see cref="IDisposable.Dispose"/>; that is idempotent
/// and safe from several threads at once: a second <c>Dispose</c>, however late, does nothing, and a later use of the owner's
/// memory throws <see cref="ObjectDisposedException"/>, because by default every rent gets an owner object of its own. With
/// <see cref="BuddyMemoryPoolOptions.RecycledOwners"/> above 0 the pool reuses disposed owner objects instead (oldest first,
/// after a quarantine of 64 returns) so renting allocates no managed memory; then a use or a second <c>Dispose</c> later than
/// the quarantine reaches the owner's next renter, as a stale array of <see cref="System.Buffers.ArrayPool{T}"/> does, so
/// turn it on only where every owner is disposed exactly once. A forgotten owner keeps its block until the heap is disposed (there is no
/// finalizer, so renting costs no finalization work). Disposing the pool stops <see cref="Rent"/>; buffers already rented stay
/// valid. Disposing an owner after its allocator was disposed (by a <c>BuddyMemoryPoolFactory</c> whose host stopped first)
/// does nothing and does not throw. A heap the pool created itself (<see cref="Create"/>) is disposed when the pool and every buffer are.</para>
/// <para><b>Where the bytes live.</b> By default in the heap's native memory: buffers are not arrays, so
/// <see cref="System.Runtime.InteropServices.MemoryMarshal.TryGetArray{T}"/> fails on them. Over a heap whose region is a
/// <see cref="PinnedArrayRegion"/> (the constructor that takes one) the buffers are segments of that pinned array as well,
/// which Kestrel's socket transport requires for multi-segment sends.</para>
/// <para><b>Cost.</b> A rent or a return is one call to the heap, an interlocked add on this processor's own cache line and,
/// mostly, a thread-local owner ring; one rent or return in 64 takes a short lock to move owners between threads.</para>
/// <para><b>Thread safety.</b> Every member is safe from any thread; the constructor accepts only an allocator that declares
/// itself thread-safe (<see cref="IAllocator.IsThreadSafe"/>: <see cref="LockedHeap"/>, <see cref="ConcurrentHeap"/>).</para>
/// </remarks>
public sealed unsafe class BuddyMemoryPool : MemoryPool<byte>
{
    /// <summary>The smallest buffer: 64 bytes, one cache line, so buffers never share a line.</summary>
    public const int MinBufferSize = 64;

    private readonly IAllocator _allocator;
    private readonly IDisposable? _ownedAllocator;
    private readonly PinnedArrayRegion? _arrayRegion;
    private readonly int _defaultBufferSize;
    private readonly int _maxBufferSize;

    // Buffers rented and not yet returned, counted per processor so that threads renting at once share no cache line.
    // An owned heap is freed once the pool is disposed and this reaches zero (TryFreeOwnedHeap).
    private readonly StripedCounter _live = new();

    // Disposed owners to hand out again after a quarantine; null when RecycledOwners is 0.
    private readonly ObjectRecycler<BuddyMemoryOwner>? _owners;
    private int _disposed;
    private int _heapFreed;

    /// <summary>Creates a pool over <paramref name="allocator"/>, which stays the caller's.</summary>
    /// <param name="allocator">A thread-safe allocator (<see cref="IAllocator.IsThreadSafe"/>), such as <see cref="LockedHeap"/> or <see cref="ConcurrentHeap"/>. It must outlive every buffer rented from the pool.</param>
    /// <param name="options">Sizes; defaults when null.</param>
    /// <exception cref="ArgumentNullException"><paramref name="allocator"/> is null.</exception>
    /// <exception cref="ArgumentException"><paramref name="allocator"/> is not thread-safe (<see cref="IAllocator.IsThreadSafe"/> is false), as a <see cref="BuddyHeap"/> or a <see cref="SlabHeap"/> (wrap a BuddyHeap in <see cref="LockedHeap"/>).</exception>
    /// <exception cref="ArgumentOutOfRangeException">An option is not positive.</exception>
    public BuddyMemoryPool(IAllocator allocator, BuddyMemoryPoolOptions? options = null)
        : this(allocator, options, owned: null, arrayRegion: null)
    {
    }

    /// <summary>
    /// Creates a pool over <paramref name="allocator"/> whose memory lies in <paramref name="arrayRegion"/>, so that every
    /// buffer is also an array segment (<see cref="System.Runtime.InteropServices.MemoryMarshal.TryGetArray{T}"/> succeeds).
    /// Kestrel's socket transport needs that: it sends multi-segment buffers as lists of array segments.
    /// </summary>
    /// <param name="allocator">A thread-safe allocator serving blocks from <paramref name="arrayRegion"/>. It must outlive every buffer.</param>
    /// <param name="arrayRegion">The pinned array the allocator's region lies in. A block outside it is handed out as plain memory.</param>
    /// <param name="options">Sizes; defaults when null.</param>
    /// <exception cref="ArgumentNullException"><paramref name="allocator"/> or <paramref name="arrayRegion"/> is null.</exception>
    /// <exception cref="ArgumentException"><paramref name="allocator"/> is not thread-safe (<see cref="IAllocator.IsThreadSafe"/> is false).</exception>
    public BuddyMemoryPool(IAllocator allocator, PinnedArrayRegion arrayRegion, BuddyMemoryPoolOptions? options = null)
        : this(allocator, options, owned: null, arrayRegion: arrayRegion ?? throw new ArgumentNullException(nameof(arrayRegion)))
    {
    }

    private BuddyMemoryPool(IAllocator allocator, BuddyMemoryPoolOptions? options, IDisposable? owned, PinnedArrayRegion? arrayRegion)
    {
        ArgumentNullException.ThrowIfNull(allocator);
        if (!allocator.IsThreadSafe)
        {
            // Asked of the engine, not guessed from its type: every single-threaded engine is refused, not only BuddyHeap.
            ThrowHelper.ThrowArgument($"A {allocator.GetType().Name} is not thread-safe (its IsThreadSafe is false) and a memory pool is used from any thread; use a ConcurrentHeap, or wrap a BuddyHeap in a LockedHeap.", nameof(allocator));
        }

        options ??= new BuddyMemoryPoolOptions();
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(options.DefaultBufferSize, nameof(options) + "." + nameof(options.DefaultBufferSize));
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(options.MaxBufferSize, nameof(options) + "." + nameof(options.MaxBufferSize));
        ArgumentOutOfRangeException.ThrowIfNegative(options.RecycledOwners, nameof(options) + "." + nameof(options.RecycledOwners));

        // Rounded down to a power of two so that rounding any accepted request up never passes it.
        ulong max = 1UL << BitOperations.Log2((uint)options.MaxBufferSize);
        if (allocator is IHeapStatsSource source && source.Stats.TotalBytes != 0)
        {
            // Honest: never promise a block larger than the heap itself.
            max = Math.Min(max, 1UL << BitOperations.Log2(source.Stats.TotalBytes));
        }

        _maxBufferSize = (int)Math.Max(max, MinBufferSize);
        _defaultBufferSize = Math.Min(BlockSizeFor(options.DefaultBufferSize), _maxBufferSize);
        _allocator = allocator;
        _ownedAllocator = owned;
        _arrayRegion = arrayRegion;
        if (options.RecycledOwners > 0)
        {
            _owners = new ObjectRecycler<BuddyMemoryOwner>(options.RecycledOwners);
        }
    }


    /// <summary>Creates a pool over a new <see cref="ConcurrentHeap"/> (the thread-safe default heap) of <paramref name="heapSize"/> bytes that the pool owns.</summary>
    /// <param name="heapSize">Bytes of native memory for the heap.</param>
    /// <param name="options">Sizes; defaults when null.</param>
    /// <returns>A pool whose heap is freed once the pool and every rented buffer are disposed.</returns>
    public static BuddyMemoryPool Create(nuint heapSize, BuddyMemoryPoolOptions? options = null)
    {
        ConcurrentHeap heap = ConcurrentHeap.Create(heapSize);
        try
        {
            return new BuddyMemoryPool(heap, options, heap, arrayRegion: null);
        }
        catch
        {
            heap.Dispose();
            throw;
        }
    }

    /// <summary>The largest <c>minBufferSize</c> that <see cref="Rent"/> accepts: a power of two, at most the configured maximum and the heap's size.</summary>
    public override int MaxBufferSize => _maxBufferSize;

    /// <summary>The size of the buffer <c>Rent(-1)</c> returns.</summary>
    public int DefaultBufferSize => _defaultBufferSize;

    /// <summary>The allocator the buffers come from (for its statistics).</summary>
    public IAllocator Allocator => _allocator;

    /// <summary>Buffers rented and not yet disposed.</summary>
    public long RentedBuffers => _live.Sum();

    /// <summary>Rents a buffer of at least <paramref name="minBufferSize"/> bytes: one heap block, rounded up to a power of two.</summary>
    /// <param name="minBufferSize">Bytes wanted, 0 to <see cref="MaxBufferSize"/>; -1 for <see cref="DefaultBufferSize"/>.</param>
    /// <returns>An owner of pinned native memory; dispose it to return the block.</returns>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="minBufferSize"/> is below -1 or above <see cref="MaxBufferSize"/>.</exception>
    /// <exception cref="HeapExhaustedException">The heap has no free block that large now.</exception>
    /// <exception cref="ObjectDisposedException">The pool was disposed.</exception>
    public override IMemoryOwner<byte> Rent(int minBufferSize = -1)
    {
        ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) != 0, this);
        int size;
        if (minBufferSize == -1)
        {
            size = _defaultBufferSize;
        }
        else
        {
            if ((uint)minBufferSize > (uint)_maxBufferSize)
            {
                ThrowRentSize(minBufferSize);
            }

            size = BlockSizeFor(minBufferSize);
        }

        // Counted before the disposed flag is read again, both fenced, as Dispose sets the flag before it sums: either this
        // rent sees the flag, or Dispose sees the count and leaves an owned heap alone.
        int cell = _live.CurrentCell;
        _live.Add(cell, 1);
        if (Volatile.Read(ref _disposed) != 0)
        {
            // Backed out on the same cell, so a sum taken meanwhile never sees the decrement without its increment.
            Uncount(cell);
            ThrowHelper.ThrowObjectDisposed(this);
        }

        var layout = new Layout((nuint)size, MinBufferSize);
        void* block = _allocator.Allocate(layout);
        if (block == null)
        {
            Uncount(cell);
            throw HeapExhaustedException.For(_allocator, layout);
        }

        ArraySegment<byte> segment = default;
        _arrayRegion?.TryGetSegment(block, size, out segment);
        BuddyMemoryOwner owner = _owners?.Take() ?? new BuddyMemoryOwner(this);
        owner.Arm((byte*)block, size, segment);
        return owner;
    }

    /// <summary>Takes a block back from an owner; called once per owner.</summary>
    /// <remarks>A late return, after the allocator was disposed (a host that stopped before every buffer came back), is
    /// harmless: the block went with the heap's memory, so there is nothing to give back.</remarks>
    internal void Return(BuddyMemoryOwner owner, byte* block, int size)
    {
        try
        {
            _allocator.Deallocate(block, new Layout((nuint)size, MinBufferSize));
        }
        catch (ObjectDisposedException)
        {
            // The heap is gone and its memory with it; the owner's Dispose stays quiet.
        }
        finally
        {
            Uncount(_live.CurrentCell);
        }

        _owners?.Give(owner);
    }

    /// <summary>Stops <see cref="Rent"/>. Buffers already rented stay valid; an owned heap goes when the last of them does.</summary>
    /// <param name="disposing">Whether called from <see cref="IDisposable.Dispose"/>.</param>
    protected override void Dispose(bool disposing)
    {
        if (Interlocked.Exchange(ref _disposed, 1) == 0)
        {
            _owners?.Close();
            TryFreeOwnedHeap();
        }
    }

    private static int BlockSizeFor(int size) => (int)BitOperations.RoundUpToPowerOf2((uint)Math.Max(size, MinBufferSize));

    private void Uncount(int cell)
    {
        _live.Add(cell, -1);
        if (Volatile.Read(ref _disposed) != 0)
        {
            TryFreeOwnedHeap();
        }
    }

    // Frees an owned heap once the pool is disposed and no buffer is out. Called after every change of the count that
    // follows the flag, so the last of them finds the sum at zero.
    private void TryFreeOwnedHeap()
    {
        if (_ownedAllocator is not null && _live.Sum() == 0 && Interlocked.Exchange(ref _heapFreed, 1) == 0)
        {
            _ownedAllocator.Dispose();
        }
    }

    [System.Diagnostics.CodeAnalysis.DoesNotReturn]
    private void ThrowRentSize(int minBufferSize)
        => throw new ArgumentOutOfRangeException(nameof(minBufferSize), minBufferSize, $"A buffer must be -1 (default) or 0 to {_maxBufferSize} bytes.");
}
