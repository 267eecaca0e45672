using BuddySystem.Collections;

namespace BuddySystem.Tests;

public unsafe class BoxVecTests
{
    [Fact]
    public void Box_New_HoldsValueInHeapAndFreesOnDispose()
    {
        using var heap = BuddyHeap.Create(4096);
        var box = new Box<long>(heap, 5);
        Assert.Equal(5, box.Value);
        box.Value = 6;
        Assert.Equal(6, *box.Pointer);
        Assert.Equal(16ul, heap.Stats.AllocatedBytes);
        box.Dispose();
        box.Dispose();
        Assert.True(box.IsDisposed);
        Assert.Throws<ObjectDisposedException>(() => box.Value);
        Assert.Equal(0ul, heap.Stats.AllocatedBytes);
    }

    [Fact]
    public void Box_HeapExhausted_ThrowsHeapExhaustedNamingRequest()
    {
        using var heap = BuddyHeap.Create(16);
        using var first = new Box<long>(heap, 1);
        var error = Assert.Throws<HeapExhaustedException>(() => new Box<long>(heap, 2));
        Assert.Equal(8ul, error.RequestedSize);
        Assert.Equal(0ul, error.LargestFreeBlock);
        Assert.Contains("8 bytes", error.Message, StringComparison.Ordinal);
        heap.Validate();
    }

    [Fact]
    public void Vec_Push500_ReadsBackAndGrowsInHeap()
    {
        using var heap = BuddyHeap.Create(1 << 16);
        using (var vec = new Vec<int>(heap))
        {
            for (int i = 0; i < 500; i++)
            {
                vec.Push(i);
            }

            Assert.Equal(500, vec.Count);
            Assert.True(vec.Capacity >= 500);
            for (int i = 0; i < 500; i++)
            {
                Assert.Equal(i, vec[i]);
            }

            Assert.Equal(Enumerable.Range(0, 500).Sum(), vec.AsSpan().ToArray().Sum());
            int sum = 0;
            foreach (int item in vec)
            {
                sum += item;
            }

            Assert.Equal(124_750, sum);
            Assert.Throws<ArgumentOutOfRangeException>(() => vec[500]);
        }

        Assert.Equal(0ul, heap.Stats.AllocatedBytes);
        heap.Validate();
    }

    [Fact]
    public void Vec_InsertRemoveClearReserve_BehaveLikeList()
    {
        using var heap = BuddyHeap.Create(1 << 16);
        using var vec = new Vec<int>(heap);
        var model = new List<int>();
        for (int i = 0; i < 50; i++)
        {
            int at = (i * 7) % (model.Count + 1);
            vec.Insert(at, i);
            model.Insert(at, i);
        }

        Assert.Equal(model, vec.AsSpan().ToArray());
        Assert.Equal(model[10], vec.RemoveAt(10));
        model.RemoveAt(10);
        Assert.Equal(model, vec.AsSpan().ToArray());
        vec.Reserve(1000);
        Assert.True(vec.Capacity >= vec.Count + 1000);
        vec.Clear();
        Assert.Equal(0, vec.Count);
    }

    [Fact]
    public void Vec_Exhausted_ThrowsAndKeepsItems()
    {
        // 16 ints fill a 64-byte block; growing to 32 needs a 128-byte block beside it, which a 128-byte heap cannot give.
        using var heap = BuddyHeap.Create(128);
        using var vec = new Vec<int>(heap);
        for (int i = 0; i < 16; i++)
        {
            vec.Push(i);
        }

        Assert.Throws<HeapExhaustedException>(() => vec.Push(16));
        Assert.Equal(16, vec.Count);
        Assert.Equal(15, vec[15]);
        heap.Validate();
    }

    [Fact]
    public void Vec_AfterDispose_ThrowsObjectDisposed()
    {
        using var heap = BuddyHeap.Create(1024);
        var vec = new Vec<int>(heap, 4);
        vec.Dispose();
        vec.Dispose();
        Assert.Throws<ObjectDisposedException>(() => vec.Push(1));
        Assert.Throws<ObjectDisposedException>(() => vec.Count);
        Assert.Equal(0ul, heap.Stats.AllocatedBytes);
    }

    [Fact]
    public void Vec_TryPop_ReturnsLastUntilEmpty()
    {
        using var heap = BuddyHeap.Create(1024);
        using var vec = new Vec<int>(heap);
        vec.Push(1);
        vec.Push(2);
        Assert.True(vec.TryPop(out int last));
        Assert.Equal(2, last);
        Assert.True(vec.TryPop(out last));
        Assert.Equal(1, last);
        Assert.False(vec.TryPop(out last));
        Assert.Equal(0, last);
    }

    [Fact]
    public void Vec_Enumerate_AllocatesNothingOnGcHeap()
    {
        using var heap = BuddyHeap.Create(1 << 16);
        using var vec = new Vec<long>(heap);
        for (int i = 0; i < 1000; i++)
        {
            vec.Push(i);
        }

        long sum = Sum(vec);
        long before = GC.GetAllocatedBytesForCurrentThread();
        sum += Sum(vec);
        Assert.Equal(0, GC.GetAllocatedBytesForCurrentThread() - before);
        Assert.Equal(2 * 499_500, sum);
    }

    [Fact]
    public void Vec_GrowthThroughReallocate_LeavesOneLiveBlockAndNoLeak()
    {
        using var heap = BuddyHeap.Create(1 << 20);
        using (var vec = new Vec<int>(heap))
        {
            for (int i = 0; i < 50_000; i++)
            {
                vec.Push(i);
            }

            Assert.Equal(1, heap.Stats.LiveBlocks);
            Assert.Equal(49_999, vec[49_999]);
        }

        Assert.Equal(0ul, heap.Stats.AllocatedBytes);
        heap.Validate();
    }

    private static long Sum(Vec<long> vec)
    {
        long sum = 0;
        foreach (long item in vec)
        {
            sum += item;
        }

        return sum;
    }
}
