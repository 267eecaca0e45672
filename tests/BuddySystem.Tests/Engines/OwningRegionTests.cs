using System.Runtime.CompilerServices;

namespace BuddySystem.Tests;

/// <summary>Issue 11 case 5: the owning AddRegion overloads keep the region's owner alive for the heap's lifetime.</summary>
public unsafe class OwningRegionTests
{
    [MethodImpl(MethodImplOptions.NoInlining)]
    private static WeakReference AddPinned(Action<PinnedArrayRegion> add)
    {
        var region = new PinnedArrayRegion(1 << 16, 1 << 16);
        add(region);
        return new WeakReference(region);
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static WeakReference AddNative(Action<NativeRegion> add)
    {
        var region = new NativeRegion(1 << 16, 1 << 16);
        add(region);
        return new WeakReference(region);
    }

    private static void Collect()
    {
        GC.Collect();
        GC.WaitForPendingFinalizers();
        GC.Collect();
    }

    private static void UseAll(IAllocator heap)
    {
        var layout = new Layout(1 << 16, 8);
        void* block = heap.Allocate(layout);
        Assert.True(block != null);
        new Span<byte>(block, 1 << 16).Fill(0xA5);
        heap.Deallocate(block, layout);
    }

    [Fact]
    public void AddRegion_PinnedArrayRegionNotReferencedElsewhere_StaysAlive()
    {
        using var heap = new BuddyHeap();
        using var locked = new LockedHeap(new BuddyHeap());
        using var concurrent = new ConcurrentHeap();
        WeakReference[] weak = [AddPinned(heap.AddRegion), AddPinned(locked.AddRegion), AddPinned(concurrent.AddRegion)];
        Collect();
        Assert.All(weak, w => Assert.True(w.IsAlive));
        UseAll(heap);
        UseAll(locked);
        UseAll(concurrent);
    }

    [Fact]
    public void AddRegion_NativeRegionNotReferencedElsewhere_IsNotFinalized()
    {
        using var heap = new BuddyHeap();
        using var concurrent = new ConcurrentHeap();
        WeakReference[] weak = [AddNative(heap.AddRegion), AddNative(concurrent.AddRegion)];
        Collect();
        Assert.All(weak, w => Assert.True(w.IsAlive && ((NativeRegion)w.Target!).Address != 0));
        UseAll(heap);
        UseAll(concurrent);
    }

    [Fact]
    public void AddRegion_RawPointer_DoesNotKeepTheOwnerAlive()
    {
        // The documented hazard of the raw overload: nothing roots the owner.
        using var heap = new BuddyHeap(BuddyHeapOptions.Eager);
        WeakReference weak = AddPinned(r => heap.AddRegion(r.Pointer, (nuint)r.Size));
        Collect();
        Assert.False(weak.IsAlive);
    }
}
