using System.Globalization;

namespace BuddySystem.Tests;

/// <summary>
/// BuddyHeap-only misuse cases, run lazy and eager. The rows of the misuse matrix that every engine shares (double free,
/// interior, never-allocated and foreign pointers, null, wrong layouts, use after dispose, oversize and invalid layouts)
/// live in <see cref="Reliability.MisuseMatrixTests"/>, which runs them on every pointer engine.
/// </summary>
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
        var error = Assert.Throws<InvalidOperationException>(() => _heap.Reallocate(second, new Layout(64, 8), 500));
        Assert.Contains(Hex(second), error.Message, StringComparison.Ordinal);
        AssertHeapStillServes(before);
    }
}
