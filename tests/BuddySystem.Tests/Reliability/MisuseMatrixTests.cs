using System.Globalization;
using BuddySystem.Testing;

namespace BuddySystem.Tests.Reliability;

/// <summary>
/// The misuse matrix of issue 6, one test per row, run on every pointer engine (<see cref="EngineCatalog.PointerHeapNames"/>: the
/// lazy and eager <see cref="BuddyHeap"/>, <see cref="LockedHeap"/>). Each asserts the exception type, that the message
/// names the address, and that the heap still validates, kept its accounting, and serves. The offset engine has its own
/// matrix (<see cref="BuddyTreeMisuseMatrixTests"/>). The BuddyHeap-only cases
/// (accepted layouts of the same block size, misuse through Reallocate) stay in <see cref="BuddyHeapMisuseTests"/>.
/// </summary>
public unsafe class MisuseMatrixTests
{
    private const nuint HeapSize = 1 << 16;

    private static readonly Layout s_layout = new(64, 8);

    public static TheoryData<string> Engines => [.. EngineCatalog.PointerHeapNames];

    public static TheoryData<string, int, int> EnginesAndWrongLayouts
    {
        get
        {
            var rows = new TheoryData<string, int, int>();
            foreach (string engine in EngineCatalog.PointerHeapNames)
            {
                rows.Add(engine, 16, 8);   // smaller block
                rows.Add(engine, 129, 8);  // larger block by size
                rows.Add(engine, 64, 256); // larger block by alignment
            }

            return rows;
        }
    }

    private static string Hex(void* p) => "0x" + ((ulong)p).ToString("x", CultureInfo.InvariantCulture);

    /// <summary>A fresh 64 KiB heap (aligned to 64 KiB) with one live 64-byte block.</summary>
    private static HeapTarget NewHeap(string engine, out byte* block)
    {
        HeapTarget target = EngineCatalog.CreateTarget(engine, HeapSize);
        block = (byte*)target.Allocator.Allocate(s_layout);
        Assert.True(block != null);
        return target;
    }

    /// <summary>The rejected call changed nothing: same accounting, validates, serves a new block, frees the old one.</summary>
    private static void AssertStillServes(HeapTarget target, HeapStats before, byte* block)
    {
        target.Validate();
        HeapStats after = target.Stats;
        Assert.Equal(before.AllocatedBytes, after.AllocatedBytes);
        Assert.Equal(before.LiveBlocks, after.LiveBlocks);
        Assert.Equal(before.FreeBytes, after.FreeBytes);
        Assert.Equal(before.UserBytes, after.UserBytes);
        void* extra = target.Allocator.Allocate(s_layout);
        Assert.True(extra != null);
        target.Allocator.Deallocate(extra, s_layout);
        target.Allocator.Deallocate(block, s_layout);
        target.Validate();
        Assert.Equal(0ul, target.Stats.AllocatedBytes);
    }

    [Theory]
    [MemberData(nameof(Engines))]
    public void Deallocate_DoubleFree_ThrowsInvalidOperationNamingAddress(string engine)
    {
        HeapTarget target = NewHeap(engine, out byte* block);
        using (target)
        {
            byte* second = (byte*)target.Allocator.Allocate(s_layout);
            target.Allocator.Deallocate(second, s_layout);
            HeapStats before = target.Stats;
            var error = Assert.Throws<InvalidOperationException>(() => target.Allocator.Deallocate(second, s_layout));
            Assert.IsNotType<HeapCorruptionException>(error);
            Assert.Contains(Hex(second), error.Message, StringComparison.Ordinal);
            AssertStillServes(target, before, block);
        }
    }

    [Theory]
    [MemberData(nameof(Engines))]
    public void Deallocate_InteriorPointer_ThrowsArgumentNamingAddress(string engine)
    {
        HeapTarget target = NewHeap(engine, out byte* block);
        using (target)
        {
            HeapStats before = target.Stats;
            foreach (int offset in new[] { 16, 3, 48 })
            {
                var error = Assert.Throws<ArgumentException>(() => target.Allocator.Deallocate(block + offset, new Layout(16, 8)));
                Assert.Contains(Hex(block + offset), error.Message, StringComparison.Ordinal);
            }

            AssertStillServes(target, before, block);
        }
    }

    [Theory]
    [MemberData(nameof(Engines))]
    public void Deallocate_NeverAllocatedAddress_ThrowsArgumentNamingAddress(string engine)
    {
        HeapTarget target = NewHeap(engine, out byte* block);
        using (target)
        {
            // The heap is one 64 KiB block aligned to its size; its upper half has never been handed out.
            byte* start = (byte*)((ulong)block & ~(ulong)(HeapSize - 1));
            HeapStats before = target.Stats;
            foreach (byte* never in new[] { start + (HeapSize / 2) + 48, start + (HeapSize / 2), start + HeapSize - 16 })
            {
                var error = Assert.ThrowsAny<Exception>(() => target.Allocator.Deallocate(never, new Layout(16, 8)));
                // The start of a free block reads as a double free (InvalidOperation); anywhere else is not a block (Argument).
                Assert.True(error is ArgumentException or InvalidOperationException and not HeapCorruptionException, error.ToString());
                Assert.Contains(Hex(never), error.Message, StringComparison.Ordinal);
            }

            var interior = Assert.Throws<ArgumentException>(() => target.Allocator.Deallocate(start + (HeapSize / 2) + 48, new Layout(16, 8)));
            Assert.Contains("not the start of a block", interior.Message, StringComparison.Ordinal);
            AssertStillServes(target, before, block);
        }
    }

    [Theory]
    [MemberData(nameof(Engines))]
    public void Deallocate_PointerFromAnotherHeap_ThrowsArgumentNamingAddress(string engine)
    {
        HeapTarget target = NewHeap(engine, out byte* block);
        using (target)
        using (HeapTarget other = EngineCatalog.CreateTarget(engine, 4096))
        {
            void* foreign = other.Allocator.Allocate(s_layout);
            HeapStats before = target.Stats;
            var error = Assert.Throws<ArgumentException>(() => target.Allocator.Deallocate(foreign, s_layout));
            Assert.Contains(Hex(foreign), error.Message, StringComparison.Ordinal);
            Assert.Contains("outside every region", error.Message, StringComparison.Ordinal);
            AssertStillServes(target, before, block);
            other.Allocator.Deallocate(foreign, s_layout);
            other.Validate();
        }
    }

    [Theory]
    [MemberData(nameof(Engines))]
    public void Deallocate_Null_ThrowsArgumentNullNamingAddressZero(string engine)
    {
        HeapTarget target = NewHeap(engine, out byte* block);
        using (target)
        {
            HeapStats before = target.Stats;
            var error = Assert.Throws<ArgumentNullException>(() => target.Allocator.Deallocate(null, s_layout));
            Assert.Contains("0x0", error.Message, StringComparison.Ordinal);
            AssertStillServes(target, before, block);
        }
    }

    [Theory]
    [MemberData(nameof(EnginesAndWrongLayouts))]
    public void Deallocate_LayoutOfAnotherBlockSize_ThrowsArgumentNamingAddress(string engine, int size, int align)
    {
        HeapTarget target = NewHeap(engine, out byte* block);
        using (target)
        {
            Assert.NotEqual(target.BlockSize(s_layout), target.BlockSize(new Layout((nuint)size, (nuint)align)));
            HeapStats before = target.Stats;
            var error = Assert.Throws<ArgumentException>(() => target.Allocator.Deallocate(block, new Layout((nuint)size, (nuint)align)));
            Assert.Contains(Hex(block), error.Message, StringComparison.Ordinal);
            Assert.Equal("layout", error.ParamName);
            AssertStillServes(target, before, block);
        }
    }

    [Theory]
    [MemberData(nameof(Engines))]
    public void Operations_AfterDispose_ThrowObjectDisposed(string engine)
    {
        HeapTarget target = NewHeap(engine, out byte* block);
        target.Dispose();
        target.Dispose(); // harmless twice
        Assert.Throws<ObjectDisposedException>(() => target.Allocator.Allocate(s_layout));
        Assert.Throws<ObjectDisposedException>(() => target.Allocator.Deallocate(block, s_layout));
        Assert.Throws<ObjectDisposedException>(() => target.Allocator.Reallocate(block, s_layout, 128));
        Assert.Throws<ObjectDisposedException>(() => target.Stats);
        Assert.Throws<ObjectDisposedException>(target.Validate);
        using var region = new TestRegion(4096, 4096);
        Assert.Throws<ObjectDisposedException>(() => target.AddRegion((nint)region.Pointer, region.Size));
    }

    [Theory]
    [MemberData(nameof(Engines))]
    public void Allocate_LargerThanHeap_ReturnsNullAndStillServes(string engine)
    {
        HeapTarget target = NewHeap(engine, out byte* block);
        using (target)
        {
            HeapStats before = target.Stats;
            Assert.True(target.Allocator.Allocate(new Layout(HeapSize + 1, 1)) == null);
            Assert.True(target.Allocator.Allocate(new Layout(HeapSize, 1)) == null); // one 64-byte block is live
            Assert.True(target.Allocator.Allocate(new Layout(nuint.MaxValue / 2, 1)) == null);
            Assert.True(target.Allocator.Allocate(new Layout(1, (nuint)1 << 62)) == null);
            Assert.Equal(before.FailedAllocations + 4, target.Stats.FailedAllocations);
            AssertStillServes(target, before with { FailedAllocations = before.FailedAllocations + 4 }, block);
        }
    }

    [Theory]
    [MemberData(nameof(Engines))]
    public void Layout_SizeOverflow_ThrowsArgumentBeforeReachingTheHeap(string engine)
    {
        HeapTarget target = NewHeap(engine, out byte* block);
        using (target)
        {
            HeapStats before = target.Stats;
            var error = Assert.Throws<ArgumentException>(() => target.Allocator.Allocate(new Layout(nuint.MaxValue, 16)));
            Assert.Equal("size", error.ParamName);
            var grow = Assert.Throws<ArgumentException>(() => target.Allocator.Reallocate(block, s_layout, nuint.MaxValue - 2));
            Assert.Equal("size", grow.ParamName);
            Assert.Contains("overflows", grow.Message, StringComparison.Ordinal);
            AssertStillServes(target, before, block);
        }
    }

    [Theory]
    [MemberData(nameof(Engines))]
    public void Layout_NonPowerOfTwoAlignment_ThrowsArgumentBeforeReachingTheHeap(string engine)
    {
        HeapTarget target = NewHeap(engine, out byte* block);
        using (target)
        {
            HeapStats before = target.Stats;
            foreach (nuint align in new nuint[] { 0, 3, 24, 4097 })
            {
                var error = Assert.Throws<ArgumentException>(() => target.Allocator.Allocate(new Layout(64, align)));
                Assert.Equal("align", error.ParamName);
                Assert.Contains(align.ToString(CultureInfo.InvariantCulture), error.Message, StringComparison.Ordinal);
            }

            AssertStillServes(target, before, block);
        }
    }
}
