using BuddySystem.Testing;

namespace BuddySystem.Cli.Bench;

/// <summary>
/// The allocators <c>buddy bench</c> and <c>buddy replay</c> measure: the measured engines of
/// <see cref="EngineCatalog.All"/>, in its order, each through its struct adapter when it has one here, else through its
/// <see cref="HeapTarget"/> (<see cref="TargetAllocator"/>).
/// </summary>
internal static class BenchAllocators
{
    // The struct adapters, by registry id: direct, devirtualised calls in the timed loops, which an interface call would
    // double on W1 (docs/benchmarks.md, "One bench adapter?"). Only the registry names engines; a test checks every key.
    private static readonly Dictionary<string, Func<Engine, BenchAllocatorEntry>> s_structAdapters = new(StringComparer.Ordinal)
    {
        ["buddy-heap"] = engine => Adapter(engine, BuddyHeapAllocator.Create),
        ["buddy-heap-eager"] = engine => Adapter(engine, BuddyHeapAllocator.CreateEager),
        ["buddy-heap-hardened"] = engine => Adapter(engine, BuddyHeapAllocator.CreateHardened),
        ["locked-heap"] = engine => Adapter(engine, LockedHeapAllocator.Create),
        ["concurrent-heap"] = engine => Adapter(engine, ConcurrentHeapAllocator.Create),
        ["concurrent-heap-buddy"] = engine => Adapter(engine, ConcurrentHeapAllocator.CreateBuddyOnly),
        ["buddy-tree"] = engine => Adapter(engine, BuddyTreeAllocator.Create),
        ["slab-heap"] = engine => Adapter(engine, SlabHeapAllocator.Create),
        ["shared-heap"] = engine => Adapter(engine, SharedHeapAllocator.Create, () => SharedHeapAllocator.Unavailable),
        ["glibc"] = engine => Adapter(engine, GlibcAllocator.Create, () => Libc.Unavailable),
        ["native-memory"] = engine => Adapter(engine, NativeMemoryAllocator.Create),
        ["mimalloc"] = engine => Adapter(engine, MimallocAllocator.Create, () => Mimalloc.Unavailable),
    };

    /// <summary>Every measured allocator, in table order (the peers last).</summary>
    public static IReadOnlyList<BenchAllocatorEntry> All { get; } = [.. EngineCatalog.All.Where(e => e.IsMeasured).Select(EntryFor)];

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
            ? new BenchAllocatorEntry<TargetAllocator>(engine.Id, engine.Description, size => new TargetAllocator(engine.CreateTarget(size)), threadSafe: engine.IsThreadSafe)
            : throw new InvalidOperationException($"the peer {engine.Id} has no bench adapter.");
    }

    private static BenchAllocatorEntry<T> Adapter<T>(Engine engine, Func<nuint, T> create, Func<string?>? unavailable = null)
        where T : struct, IBenchAllocator
        => new(engine.Id, engine.Description, create, unavailable);
}
