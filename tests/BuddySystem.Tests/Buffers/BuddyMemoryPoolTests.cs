using System.Buffers;
using System.IO.Pipelines;
using System.Runtime.InteropServices;
using BuddySystem.Buffers;

namespace BuddySystem.Tests;

public unsafe class BuddyMemoryPoolTests
{
    [Fact]
    public void Rent_Default_Gives4096BytesOfHeapMemory()
    {
        using var heap = LockedHeap.Create(1 << 20);
        using var pool = new BuddyMemoryPool(heap);
        using IMemoryOwner<byte> owner = pool.Rent();
        Assert.Equal(4096, owner.Memory.Length);
        Assert.Equal(4096, pool.DefaultBufferSize);
        Assert.Equal(4096ul, heap.Stats.AllocatedBytes);
        Assert.Equal(1, pool.RentedBuffers);
    }

    [Theory]
    [InlineData(0, 64)]
    [InlineData(1, 64)]
    [InlineData(5000, 8192)]
    [InlineData(1 << 20, 1 << 20)]
    public void Rent_Size_GivesWholePowerOfTwoBlockAtLeastThatLarge(int minBufferSize, int expected)
    {
        using var heap = LockedHeap.Create(4 << 20);
        using var pool = new BuddyMemoryPool(heap);
        using IMemoryOwner<byte> owner = pool.Rent(minBufferSize);
        Assert.Equal(expected, owner.Memory.Length);
        owner.Memory.Span.Fill(0xAB);
        Assert.Equal((ulong)expected, heap.Stats.AllocatedBytes);
    }

    [Fact]
    public void Rent_AboveMaxBufferSize_ThrowsArgumentOutOfRange()
    {
        using var heap = LockedHeap.Create(1 << 20);
        using var pool = new BuddyMemoryPool(heap, new BuddyMemoryPoolOptions { MaxBufferSize = 100_000 });
        Assert.Equal(65_536, pool.MaxBufferSize);
        Assert.Throws<ArgumentOutOfRangeException>(() => pool.Rent(65_537));
        Assert.Throws<ArgumentOutOfRangeException>(() => pool.Rent(-2));
        Assert.Equal(0ul, heap.Stats.AllocatedBytes);
    }

    [Fact]
    public void MaxBufferSize_SmallHeap_NeverAboveHeap()
    {
        using var heap = LockedHeap.Create(64 << 10);
        using var pool = new BuddyMemoryPool(heap);
        Assert.Equal(64 << 10, pool.MaxBufferSize);
        using IMemoryOwner<byte> whole = pool.Rent(pool.MaxBufferSize);
        Assert.Equal(pool.MaxBufferSize, whole.Memory.Length);
    }

    [Fact]
    public void Rent_HeapExhausted_ThrowsAndHeapStaysValid()
    {
        using var heap = LockedHeap.Create(64 << 10);
        using var pool = new BuddyMemoryPool(heap);
        var owners = new List<IMemoryOwner<byte>>();
        Assert.Throws<HeapExhaustedException>((Action)(() =>
        {
            while (true)
            {
                owners.Add(pool.Rent(4096));
            }
        }));
        Assert.Equal(16, owners.Count);
        Assert.Equal(16, pool.RentedBuffers);
        heap.Validate();
        owners.ForEach(owner => owner.Dispose());
        Assert.Equal(0ul, heap.Stats.AllocatedBytes);
        Assert.Equal(0, pool.RentedBuffers);
    }

    [Fact]
    public void Owner_Memory_IsPinnedNativeMemoryWithoutGcHandle()
    {
        using var heap = LockedHeap.Create(1 << 20);
        using var pool = new BuddyMemoryPool(heap);
        using IMemoryOwner<byte> owner = pool.Rent(100);
        Memory<byte> memory = owner.Memory;
        Assert.True(MemoryMarshal.TryGetMemoryManager<byte, MemoryManager<byte>>(memory, out MemoryManager<byte>? manager));
        Assert.Same(owner, manager);
        Assert.False(MemoryMarshal.TryGetArray((ReadOnlyMemory<byte>)memory, out _));
        using MemoryHandle handle = memory.Slice(10).Pin();
        fixed (byte* start = memory.Span)
        {
            Assert.Equal((nint)(start + 10), (nint)handle.Pointer);
            Assert.Equal(128ul, heap.Stats.AllocatedBytes);
        }
    }

    [Fact]
    public void Owner_DisposeTwiceAndFromManyThreads_ReturnsBlockOnce()
    {
        using var heap = LockedHeap.Create(1 << 20);
        using var pool = new BuddyMemoryPool(heap);
        IMemoryOwner<byte> owner = pool.Rent();
        using IMemoryOwner<byte> other = pool.Rent();
        Parallel.For(0, 16, _ => owner.Dispose());
        owner.Dispose();
        Assert.Equal(4096ul, heap.Stats.AllocatedBytes);
        Assert.Equal(1, pool.RentedBuffers);
        heap.Validate();
    }

    [Fact]
    public void Owner_MemoryAfterDispose_ThrowsObjectDisposed()
    {
        using var heap = LockedHeap.Create(1 << 20);
        using var pool = new BuddyMemoryPool(heap);
        IMemoryOwner<byte> owner = pool.Rent();
        Memory<byte> earlier = owner.Memory;
        owner.Dispose();
        Assert.Throws<ObjectDisposedException>(() => owner.Memory);
        Assert.Throws<ObjectDisposedException>(() => earlier.Span.Length);
        Assert.Throws<ObjectDisposedException>(() => earlier.Pin());
    }

    [Fact]
    public void Rent_AfterPoolDispose_ThrowsButRentedBuffersStayValid()
    {
        using var heap = LockedHeap.Create(1 << 20);
        var pool = new BuddyMemoryPool(heap);
        IMemoryOwner<byte> owner = pool.Rent();
        pool.Dispose();
        pool.Dispose();
        Assert.Throws<ObjectDisposedException>(() => pool.Rent());
        owner.Memory.Span[0] = 1;
        owner.Dispose();
        Assert.Equal(0ul, heap.Stats.AllocatedBytes);
    }

    [Fact]
    public void Create_OwnedHeap_FreedWhenPoolAndLastBufferAreDisposed()
    {
        var pool = BuddyMemoryPool.Create(1 << 20);
        var heap = (ConcurrentHeap)pool.Allocator;
        IMemoryOwner<byte> owner = pool.Rent();
        pool.Dispose();
        Assert.Equal(4096ul, heap.Stats.AllocatedBytes);
        owner.Dispose();
        Assert.Throws<ObjectDisposedException>(() => heap.Stats);
    }

    [Fact]
    public void Constructor_SingleThreadedBuddyHeap_ThrowsArgumentException()
    {
        using var heap = BuddyHeap.Create(1 << 16);
        var error = Assert.Throws<ArgumentException>(() => new BuddyMemoryPool(heap));
        Assert.Equal("allocator", error.ParamName);
    }

    [Fact]
    public void Constructor_SingleThreadedSlabHeap_ThrowsArgumentException()
    {
        // Refused because the engine says it is not thread-safe; the type check before issue 33 let a SlabHeap through.
        using var heap = SlabHeap.Create(1 << 20);
        var error = Assert.Throws<ArgumentException>(() => new BuddyMemoryPool(heap));
        Assert.Equal("allocator", error.ParamName);
        Assert.Contains("SlabHeap is not thread-safe", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Constructor_AllocatorThatDeclaresNothing_IsSingleThreadedAndRefused()
    {
        var error = Assert.Throws<ArgumentException>(() => new BuddyMemoryPool(new SilentAllocator()));
        Assert.Equal("allocator", error.ParamName);
    }

    [Fact]
    public void Constructor_ThreadSafeHeaps_AreAccepted()
    {
        using var locked = LockedHeap.Create(1 << 20);
        using var concurrent = ConcurrentHeap.Create(1 << 20);
        using var overLocked = new BuddyMemoryPool(locked);
        using var overConcurrent = new BuddyMemoryPool(concurrent);
        using IMemoryOwner<byte> a = overLocked.Rent(100);
        using IMemoryOwner<byte> b = overConcurrent.Rent(100);
        Assert.Equal(128, a.Memory.Length);
        Assert.Equal(128, b.Memory.Length);
    }

    // An allocator that does not override IAllocator.IsThreadSafe.
    private sealed unsafe class SilentAllocator : IAllocator
    {
        public void* Allocate(Layout layout) => null;

        public void Deallocate(void* ptr, Layout layout)
        {
        }
    }

    [Fact]
    public void Rent_OverPinnedArrayRegion_BufferIsAlsoAnArraySegment()
    {
        var region = new PinnedArrayRegion(1 << 20, 1 << 20);
        Assert.Equal(0, (nint)region.Pointer & ((1 << 20) - 1));
        var engine = new BuddyHeap();
        engine.AddRegion(region.Pointer, (nuint)region.Size);
        using var heap = new LockedHeap(engine);
        using var pool = new BuddyMemoryPool(heap, region);
        IMemoryOwner<byte> owner = pool.Rent(3000);
        owner.Memory.Span.Fill(7);
        Assert.True(MemoryMarshal.TryGetArray((ReadOnlyMemory<byte>)owner.Memory.Slice(100, 50), out ArraySegment<byte> segment));
        Assert.Equal(50, segment.Count);
        Assert.All(segment, b => Assert.Equal(7, b));
        fixed (byte* span = owner.Memory.Span)
        fixed (byte* array = &segment.Array![segment.Offset])
        {
            Assert.Equal((nint)span + 100, (nint)array);
        }

        ReadOnlyMemory<byte> earlier = owner.Memory;
        owner.Dispose();
        Assert.Throws<ObjectDisposedException>(() => MemoryMarshal.TryGetArray(earlier, out _));
        Assert.Equal(0ul, heap.Stats.AllocatedBytes);
    }
}
