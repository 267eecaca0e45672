using System.Runtime.InteropServices;

namespace BuddySystem.Tests.Engines;

/// <summary>
/// The caches of class objects that live outside the heap (the C loader's per-thread caches of libbuddymalloc.so,
/// <see cref="ConcurrentHeap.RefillClassCache"/> and <see cref="ConcurrentHeap.FlushClassCache"/>): an object in such a
/// cache is live to the heap, any free of it is named a double free, and a flush frees exactly the surplus, from the
/// thread that filled the cache or from another.
/// </summary>
public unsafe class OutsideClassCacheTests
{
    // Class 2 holds 48-byte objects (16, 32, 48, ...).
    private const int ClassIndex = 2;
    private static readonly Layout s_object = new(48, 1);

    [Fact]
    public void Refill_GivesObjectsOfTheClass_ThatTheHeapCountsLive_AndWhoseFreeIsADoubleFree()
    {
        using var heap = ConcurrentHeap.Create(1 << 20, BuddyHeapOptions.ConcurrentDefault);
        using var owned = new NativeCache(64);
        BuddyHeap.OrderCache* cache = owned.Cache;
        Assert.True(heap.RefillClassCache(cache, ClassIndex, 20));
        Assert.Equal(20, cache->Count);
        List<nint> objects = Items(cache);
        Assert.Equal(20, objects.Distinct().Count());
        Assert.All(objects, o => Assert.Equal(0, o % 16));
        Assert.Equal(20, heap.Stats.LiveBlocks);
        heap.Validate();

        // A free of a cached object, with or without its layout, is a double free; the heap does not change.
        var error = Assert.Throws<InvalidOperationException>(() => heap.Deallocate((void*)objects[3]));
        Assert.Contains("not allocated", error.Message, StringComparison.Ordinal);
        Assert.Throws<InvalidOperationException>(() => heap.Deallocate((void*)objects[3], s_object));
        Assert.Throws<InvalidOperationException>(() => heap.UsableSize((void*)objects[3]));
        Assert.Equal(20, heap.Stats.LiveBlocks);
        heap.Validate();
    }

    [Fact]
    public void Flush_FreesTheSurplusOnly_AndTheHeapServesItsObjectsAgain()
    {
        using var heap = ConcurrentHeap.Create(1 << 20, BuddyHeapOptions.ConcurrentDefault);
        using var owned = new NativeCache(64);
        BuddyHeap.OrderCache* cache = owned.Cache;
        heap.RefillClassCache(cache, ClassIndex, 40);
        List<nint> before = Items(cache);
        heap.FlushClassCache(cache, ClassIndex, keep: 10);

        Assert.Equal(10, cache->Count);
        Assert.Equal(before[30..], Items(cache));
        Assert.Equal(10, heap.Stats.LiveBlocks);
        heap.Validate();

        // The 30 freed objects are the heap's again: allocations find them.
        var again = new HashSet<nint>();
        for (int i = 0; i < 30; i++)
        {
            again.Add((nint)heap.Allocate(s_object));
        }

        Assert.Subset(before[..30].ToHashSet(), again);
        heap.FlushClassCache(cache, ClassIndex, keep: 0);
        Assert.Equal(30, heap.Stats.LiveBlocks);
        heap.Validate();
    }

    [Fact]
    public void Flush_OnAnotherThread_FreesThroughTheOrdinaryPath()
    {
        using var heap = ConcurrentHeap.Create(1 << 20, BuddyHeapOptions.ConcurrentDefault);
        using var owned = new NativeCache(64);
        BuddyHeap.OrderCache* cache = owned.Cache;
        OtherThread.Run(() => heap.RefillClassCache(cache, ClassIndex, 32));
        heap.FlushClassCache(cache, ClassIndex, keep: 0);
        Assert.Equal(0, cache->Count);
        Assert.Equal(0, heap.Stats.LiveBlocks);
        heap.Validate();
    }

    [Fact]
    public void Flush_OfAListWithAnObjectNotCached_ThrowsAndFreesNothing()
    {
        using var heap = ConcurrentHeap.Create(1 << 20, BuddyHeapOptions.ConcurrentDefault);
        using var owned = new NativeCache(64);
        BuddyHeap.OrderCache* cache = owned.Cache;
        heap.RefillClassCache(cache, ClassIndex, 8);
        // A write after free links a live object of the class into the list, as if the list were overwritten.
        void* live = heap.Allocate(s_object);
        cache->Push(live);
        List<nint> listed = Items(cache);

        var error = Assert.Throws<InvalidOperationException>(() => heap.FlushClassCache(cache, ClassIndex, keep: 0));
        Assert.Contains("not cached", error.Message, StringComparison.Ordinal);
        Assert.Equal(listed, Items(cache));
        Assert.Equal(9, heap.Stats.LiveBlocks);
        heap.Validate();
        heap.Deallocate(live, s_object);
    }

    [Fact]
    public void Snapshot_ShowsCachedObjectsAsAllocated()
    {
        using var heap = ConcurrentHeap.Create(1 << 20, BuddyHeapOptions.ConcurrentDefault);
        using var owned = new NativeCache(64);
        BuddyHeap.OrderCache* cache = owned.Cache;
        heap.RefillClassCache(cache, ClassIndex, 12);
        var snapshot = Diagnostics.HeapSnapshot.Of(heap);
        ulong baseAddress = snapshot.BaseAddress;
        foreach (nint item in Items(cache))
        {
            Assert.Contains(snapshot.Blocks, b => b.Offset == (ulong)item - baseAddress && b.Size == 48 && b.State == Diagnostics.BlockState.Allocated);
        }
    }

    /// <summary>An outside cache in native memory, as the C loader's, freed at the end of the test.</summary>
    private sealed class NativeCache : IDisposable
    {
        public NativeCache(int capacity)
        {
            Cache = (BuddyHeap.OrderCache*)NativeMemory.AllocZeroed((nuint)sizeof(BuddyHeap.OrderCache));
            Cache->Initialize(capacity);
        }

        public BuddyHeap.OrderCache* Cache { get; }

        public void Dispose() => NativeMemory.Free(Cache);
    }

    private static List<nint> Items(BuddyHeap.OrderCache* cache)
    {
        var items = new List<nint>();
        for (BuddyHeap.CachedBlock* item = cache->Head; item != null; item = item->Next)
        {
            items.Add((nint)item);
        }

        return items;
    }
}
