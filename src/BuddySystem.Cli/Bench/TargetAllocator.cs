namespace BuddySystem.Cli.Bench;

/// <summary>Makes <see cref="TargetAllocator{THot}"/>s.</summary>
internal static class TargetAllocator
{
    /// <summary>
    /// <paramref name="heap"/>, empty, given a new region of <paramref name="heapSize"/> bytes aligned to its size (a power
    /// of two) with its pages touched before timing, as every bench heap is set up (docs/benchmarks.md, "How buddy bench measures").
    /// </summary>
    /// <param name="heapSize">The region's size and alignment.</param>
    /// <param name="id">The engine's registry id, for messages.</param>
    /// <param name="heap">The engine, with no memory yet; the adapter disposes it.</param>
    /// <param name="target">The engine's <see cref="HeapTarget"/> (a <c>HeapTarget.Of</c> overload).</param>
    /// <param name="hot">The engine's direct calls.</param>
    public static TargetAllocator<THot> OverRegion<THeap, THot>(nuint heapSize, string id, THeap heap, Func<string, THeap, HeapTarget> target, Func<THeap, THot> hot)
        where THot : struct, IHotCalls
    {
        var region = new NativeRegion(heapSize, heapSize, touchPages: true);
        HeapTarget engine = target(id, heap);
        engine.AddRegion((nint)region.Address, region.Size);
        return new TargetAllocator<THot>(engine, hot(heap), region);
    }

    /// <summary>A registry engine under test as it is, every call through <see cref="IAllocator"/>: how an engine with no
    /// struct calls of its own joins bench and replay, and how <c>map</c> and <c>explore</c> step a trace.</summary>
    public static TargetAllocator<InterfaceCalls> Of(HeapTarget target) => new(target, new InterfaceCalls(target.Allocator), region: null);
}
