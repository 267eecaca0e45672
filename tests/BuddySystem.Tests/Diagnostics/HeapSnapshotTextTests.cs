using BuddySystem.Diagnostics;

namespace BuddySystem.Tests;

public class HeapSnapshotTextTests
{
    [Fact]
    public unsafe void WriteThenRead_OfAUsedHeap_GivesTheSameBlocksInFewLines()
    {
        var heap = new BuddyHeap();
        void* memory = System.Runtime.InteropServices.NativeMemory.AlignedAlloc(1 << 20, 1 << 20);
        try
        {
            heap.AddRegion(memory, 1 << 20);
            var live = new List<nint>();
            for (int i = 0; i < 2000; i++)
            {
                live.Add((nint)heap.Allocate(new Layout((nuint)(16 + (i % 5) * 40), 8)));
            }

            for (int i = 0; i < live.Count; i += 3)
            {
                heap.Deallocate((void*)live[i], new Layout((nuint)(16 + (i % 5) * 40), 8));
            }

            HeapSnapshot snapshot = HeapSnapshot.Of(heap);
            var text = new StringWriter();
            snapshot.Write(text);
            HeapSnapshot back = HeapSnapshot.Read(new StringReader(text.ToString()));

            Assert.Equal(snapshot.Blocks, back.Blocks);
            Assert.Equal(snapshot.BaseAddress, back.BaseAddress);
            Assert.Equal(snapshot.OrderCount, back.OrderCount);
            Assert.Equal(snapshot.FreeBlocksByOrder, back.FreeBlocksByOrder);
            Assert.Contains(snapshot.Blocks, b => b.State == BlockState.Cached);
            Assert.True(text.ToString().Split('\n').Length < snapshot.Blocks.Count, "runs of like blocks share a line");
        }
        finally
        {
            heap.Dispose();
            System.Runtime.InteropServices.NativeMemory.AlignedFree(memory);
        }
    }

    [Fact]
    public unsafe void WriteThenRead_OfASizeClassHeap_KeepsTheObjectsSizesAndTheSlabs()
    {
        // Objects of 48 and 3 584 bytes: sizes that are not an order's, inside slabs (the process allocator's map).
        using var heap = ConcurrentHeap.Create(1 << 20, BuddyHeapOptions.ConcurrentDefault);
        var live = new List<nint>();
        for (int i = 0; i < 300; i++)
        {
            live.Add((nint)heap.Allocate(new Layout(i % 2 == 0 ? 48u : 3500u, 1)));
        }

        for (int i = 0; i < live.Count; i += 4)
        {
            heap.Deallocate((void*)live[i]);
        }

        HeapSnapshot snapshot = HeapSnapshot.Of(heap);
        var text = new StringWriter();
        snapshot.Write(text);
        HeapSnapshot back = HeapSnapshot.Read(new StringReader(text.ToString()));

        Assert.Contains(snapshot.Blocks, b => b.Size == 48);
        Assert.Contains(snapshot.Blocks, b => b.Size == 3584);
        Assert.NotEmpty(snapshot.Slabs);
        Assert.Equal(snapshot.Blocks, back.Blocks);
        Assert.Equal(snapshot.Slabs, back.Slabs);
        Assert.Equal(snapshot.AllocatedBytes, back.AllocatedBytes);
        Assert.Equal(snapshot.LiveBlocks, back.LiveBlocks);
    }

    [Theory]
    [InlineData("not a snapshot\n", "line 1")]
    [InlineData("buddy-snapshot 2\nmin-block 16\norders 4\nbase 0x0\n0 1 A 1 0\n", "line 5")]
    [InlineData("buddy-snapshot 2\nmin-block 16\norders 4\nbase 0x0\nslab 0 64 16 4 5\n", "line 5")]
    [InlineData("buddy-snapshot 1\nmin-block 16\norders 4\nbase 0x0\n0 1 Q 1\n", "line 5")]
    [InlineData("buddy-snapshot 1\nmin-block 16\norders 4\n", "line 4")]
    [InlineData("buddy-snapshot 1\nmin-block 16\norders 4\nbase 0x0\n0 1 A 2\n16 0 F 1\n", "inconsistent")]
    public void Read_BadText_ThrowsInvalidDataNamingTheLine(string text, string named)
    {
        var error = Assert.Throws<InvalidDataException>(() => HeapSnapshot.Read(new StringReader(text)));
        Assert.Contains(named, error.Message, StringComparison.Ordinal);
    }
}
