using BuddySystem.Cli.Bench.Pools;

namespace BuddySystem.Cli.Bench;

/// <summary>
/// The allocators <c>buddy bench</c> and <c>buddy replay</c> measure: the measured engines of
/// <see cref="EngineCatalog.All"/>, in its order, each through its struct adapter when it has one here, else through its
/// <see cref="HeapTarget"/> (<see cref="TargetAllocator.Of"/>).
/// </summary>
internal static class BenchAllocators
{
    // The struct adapters, by registry id: direct, devirtualised calls in the timed loops, which an interface call would
    // double on W1 (docs/benchmarks.md, "One bench adapter?"). Only the registry names engines; a test checks every key.
    private static readonly Dictionary<string, Func<Engine, BenchAllocatorEntry>> s_structAdapters = new(StringComparer.Ordinal)
    {
        ["buddy-heap"] = engine => OverRegion(engine, () => new BuddyHeap(), HeapTarget.Of, heap => new BuddyHeapCalls(heap)),
        // The eager heap, the baseline the lazy caches are measured against.
        ["buddy-heap-eager"] = engine => OverRegion(engine, () => new BuddyHeap(BuddyHeapOptions.Eager), HeapTarget.Of, heap => new BuddyHeapCalls(heap)),
        // Every check of hardened mode (poison, canary and footer; no stacks), to measure what hardening costs.
        ["buddy-heap-hardened"] = engine => OverRegion(engine, () => new BuddyHeap(BuddyHeapOptions.Default with { Hardening = HeapHardeningOptions.Default }), HeapTarget.Of, heap => new BuddyHeapCalls(heap)),
        ["locked-heap"] = engine => OverRegion(engine, () => new LockedHeap(new BuddyHeap()), HeapTarget.Of, heap => new LockedHeapCalls(heap)),
        ["concurrent-heap"] = engine => OverRegion(engine, () => new ConcurrentHeap(BuddyHeapOptions.ConcurrentDefault), HeapTarget.Of, heap => new ConcurrentHeapCalls(heap)),
        ["concurrent-heap-buddy"] = engine => OverRegion(engine, () => new ConcurrentHeap(EngineCatalog.ConcurrentBuddyOnly), HeapTarget.Of, heap => new ConcurrentHeapCalls(heap)),
        ["slab-heap"] = engine => OverRegion(engine, () => new SlabHeap(), HeapTarget.Of, heap => new SlabHeapCalls(heap)),
        ["buddy-tree"] = engine => Adapter(engine, BuddyTreeAllocator.Create),
        ["shared-heap"] = engine => Adapter(engine, SharedHeapAllocator.Create, () => SharedHeapAllocator.Unavailable),
        ["glibc"] = Peer<Libc>,
        ["native-memory"] = Peer<NativeMemoryApi>,
        ["mimalloc"] = Peer<Mimalloc>,
        ["buddy-pool"] = engine => new BenchPoolEntry<BuddyPoolBench>(engine.Id, engine.Description, BuddyPoolBench.Create),
        ["array-pool"] = engine => new BenchPoolEntry<ArrayPoolBench>(engine.Id, engine.Description, ArrayPoolBench.Create),
        ["memory-pool"] = engine => new BenchPoolEntry<MemoryPoolBench>(engine.Id, engine.Description, MemoryPoolBench.Create),
        ["kestrel-pool"] = engine => new BenchPoolEntry<KestrelPoolBench>(engine.Id, engine.Description, KestrelPoolBench.Create),
    };

    /// <summary>Every measured allocator, in table order (the peers last).</summary>
    public static IReadOnlyList<BenchAllocatorEntry> All { get; } = [.. EngineCatalog.All.Where(e => e.IsMeasured).Select(EntryFor)];

    /// <summary>The allocators <c>buddy replay</c> can run a trace on (not the buffer pools).</summary>
    public static IReadOnlyList<BenchAllocatorEntry> Replayable { get; } = [.. All.Where(a => a.Replays)];

    /// <summary>The registry ids that have a struct adapter here (every one must name a measured engine).</summary>
    public static IEnumerable<string> StructAdapterIds => s_structAdapters.Keys;

    /// <summary>The allocator with <paramref name="id"/> (case-insensitive), or null.</summary>
    public static BenchAllocatorEntry? Find(string id) => All.FirstOrDefault(a => string.Equals(a.Id, id, StringComparison.OrdinalIgnoreCase));

    private static BenchAllocatorEntry EntryFor(Engine engine)
    {
        if (s_structAdapters.TryGetValue(engine.Id, out Func<Engine, BenchAllocatorEntry>? adapter))
        {
            return adapter(engine);
        }

        // An engine known only by its HeapTarget joins at once, called through IAllocator; a peer has no target to call.
        return engine.IsTestable
            ? Adapter(engine, size => TargetAllocator.Of(engine.CreateTarget(size)))
            : throw new InvalidOperationException($"the peer {engine.Id} has no bench adapter.");
    }

    // An engine of the project over a region of the bench's own, its hot calls direct (a new heap each run).
    private static BenchAllocatorEntry OverRegion<THeap, THot>(Engine engine, Func<THeap> heap, Func<string, THeap, HeapTarget> target, Func<THeap, THot> hot)
        where THot : struct, IHotCalls
        => Adapter(engine, size => TargetAllocator.OverRegion(size, engine.Id, heap(), target, hot));

    // A peer C allocator, skipped with its reason where it does not load.
    private static BenchAllocatorEntry Peer<TApi>(Engine engine)
        where TApi : struct, IMallocApi
        => Adapter(engine, MallocAllocator<TApi>.Create, () => TApi.Unavailable);

    // The engine's thread safety is the registry's (what its HeapTarget states); a peer's is its adapter's.
    private static BenchAllocatorEntry<T> Adapter<T>(Engine engine, Func<nuint, T> create, Func<string?>? unavailable = null)
        where T : struct, IBenchAllocator
        => new(engine.Id, engine.Description, create, unavailable, engine.IsTestable ? () => engine.IsThreadSafe : null);
}
