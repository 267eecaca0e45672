using System.Globalization;

namespace BuddySystem.Tests;

/// <summary>Every misuse of Deallocate throws, names the address, and leaves a heap that validates and serves.</summary>
public abstract unsafe class BuddyHeapMisuseTests : IDisposable
{
    private readonly TestRegion _region = new(1 << 16, 1 << 16);
    private readonly BuddyHeap _heap;
    private readonly byte* _block;

    protected BuddyHeapMisuseTests(BuddyHeapOptions options)
    {
        _heap = new BuddyHeap(options);
        _heap.AddRegion(_region.Pointer, _region.Size);
        _block = (byte*)_heap.Allocate(new Layout(64, 8));
    }

    public void Dispose()
    {
        _heap.Dispose();
        _region.Dispose();
        GC.SuppressFinalize(this);
    }

    private static string Hex(void* p) => "0x" + ((ulong)p).ToString("x", CultureInfo.InvariantCulture);

    private void AssertHeapStillServes(HeapStats before)
    {
        _heap.Validate();
        HeapStats after = _heap.Stats;
        Assert.Equal(before.AllocatedBytes, after.AllocatedBytes);
        Assert.Equal(before.FreeBlocksByOrder, after.FreeBlocksByOrder);
        void* extra = _heap.Allocate(new Layout(64, 8));
        Assert.True(extra != null);
        _heap.Deallocate(extra, new Layout(64, 8));
        _heap.Deallocate(_block, new Layout(64, 8));
        _heap.Validate();
        Assert.Equal(0ul, _heap.Stats.AllocatedBytes);
    }

    [Fact]
    public void Deallocate_Null_ThrowsArgumentException()
    {
        HeapStats before = _heap.Stats;
        var error = Assert.ThrowsAny<ArgumentException>(() => _heap.Deallocate(null, new Layout(64, 8)));
        Assert.Contains("0x0", error.Message, StringComparison.Ordinal);
        AssertHeapStillServes(before);
    }

    [Fact]
    public void Deallocate_DoubleFree_ThrowsInvalidOperationNamingAddress()
    {
        byte* second = (byte*)_heap.Allocate(new Layout(64, 8));
        _heap.Deallocate(second, new Layout(64, 8));
        HeapStats before = _heap.Stats;
        var error = Assert.Throws<InvalidOperationException>(() => _heap.Deallocate(second, new Layout(64, 8)));
        Assert.Contains(Hex(second), error.Message, StringComparison.Ordinal);
        AssertHeapStillServes(before);
    }

    [Fact]
    public void Deallocate_InteriorPointer_ThrowsArgumentNamingAddress()
    {
        HeapStats before = _heap.Stats;
        var error = Assert.Throws<ArgumentException>(() => _heap.Deallocate(_block + 16, new Layout(16, 8)));
        Assert.Contains(Hex(_block + 16), error.Message, StringComparison.Ordinal);
        AssertHeapStillServes(before);
    }

    [Fact]
    public void Deallocate_UnalignedInteriorPointer_ThrowsArgumentNamingAddress()
    {
        HeapStats before = _heap.Stats;
        var error = Assert.Throws<ArgumentException>(() => _heap.Deallocate(_block + 3, new Layout(64, 8)));
        Assert.Contains(Hex(_block + 3), error.Message, StringComparison.Ordinal);
        AssertHeapStillServes(before);
    }

    [Fact]
    public void Deallocate_NeverAllocatedAddress_ThrowsArgumentNamingAddress()
    {
        HeapStats before = _heap.Stats;
        byte* inside = _region.Pointer + (1 << 15) + 48; // inside the free upper half
        var error = Assert.Throws<ArgumentException>(() => _heap.Deallocate(inside, new Layout(16, 8)));
        Assert.Contains(Hex(inside), error.Message, StringComparison.Ordinal);
        AssertHeapStillServes(before);
    }

    [Fact]
    public void Deallocate_PointerFromAnotherHeap_ThrowsArgumentNamingAddress()
    {
        using var other = BuddyHeap.Create(4096, _heap.Options);
        void* foreign = other.Allocate(new Layout(64, 8));
        HeapStats before = _heap.Stats;
        var error = Assert.Throws<ArgumentException>(() => _heap.Deallocate(foreign, new Layout(64, 8)));
        Assert.Contains(Hex(foreign), error.Message, StringComparison.Ordinal);
        Assert.Contains("outside every region", error.Message, StringComparison.Ordinal);
        AssertHeapStillServes(before);
        other.Validate();
    }

    [Theory]
    [InlineData(16, 8)]
    [InlineData(65, 8)]
    [InlineData(64, 128)]
    public void Deallocate_LayoutOfAnotherBlockSize_ThrowsArgumentNamingAddress(int size, int align)
    {
        HeapStats before = _heap.Stats;
        var error = Assert.Throws<ArgumentException>(() => _heap.Deallocate(_block, new Layout((nuint)size, (nuint)align)));
        Assert.Contains(Hex(_block), error.Message, StringComparison.Ordinal);
        Assert.Equal("layout", error.ParamName);
        AssertHeapStillServes(before);
    }

    [Fact]
    public void Deallocate_LayoutOfSameBlockSize_IsAccepted()
    {
        _heap.Deallocate(_block, new Layout(33, 4));
        _heap.Validate();
        Assert.Equal(0ul, _heap.Stats.AllocatedBytes);
    }

    [Fact]
    public void Reallocate_DoubleFreedBlock_ThrowsAndChangesNothing()
    {
        byte* second = (byte*)_heap.Allocate(new Layout(64, 8));
        _heap.Deallocate(second, new Layout(64, 8));
        HeapStats before = _heap.Stats;
        Assert.Throws<InvalidOperationException>(() => _heap.Reallocate(second, new Layout(64, 8), 500));
        AssertHeapStillServes(before);
    }
}
