namespace BuddySystem.Testing;

/// <summary>
/// Every engine, in table order (the peers last): the one registry that soak, stress, the fuzzer, the reliability tests,
/// bench and replay enumerate. A new engine joins them all by one line in <see cref="All"/> (<see cref="Engine.Tested"/>);
/// the buddy tool's bench gives it a struct adapter of its own when its timings must not include an interface call.
/// </summary>
internal static class EngineCatalog
{
    /// <summary>The options of <c>concurrent-heap-buddy</c>: <see cref="ConcurrentHeap"/> without its size-class tier,
    /// per-thread buddy caches only, 256 KiB per order.</summary>
    public static BuddyHeapOptions ConcurrentBuddyOnly => BuddyHeapOptions.ConcurrentBuddyOnly;

    /// <summary>The registrations.</summary>
    public static IReadOnlyList<Engine> All { get; } =
    [
        Engine.Tested("buddy-heap", "BuddyHeap, no lock", (id, size) => HeapTarget.Of(id, BuddyHeap.Create(size))),
        Engine.Tested("buddy-heap-eager", "BuddyHeap with eager merging (no lazy caches)", (id, size) => HeapTarget.Of(id, BuddyHeap.Create(size, BuddyHeapOptions.Eager))),
        Engine.Tested("buddy-heap-hardened", "BuddyHeap with hardened mode (poison, canary, footer)", (id, size) => HeapTarget.Of(id, BuddyHeap.Create(size, BuddyHeapOptions.Default with { Hardening = HeapTarget.ThrowingHardening }))),
        Engine.Tested("locked-heap", "LockedHeap: BuddyHeap behind a lock", (id, size) => HeapTarget.Of(id, LockedHeap.Create(size))),
        Engine.Tested("concurrent-heap", "ConcurrentHeap, the thread-safe default: per-thread slabs of size classes up to 8 KiB, per-thread caches of larger buddy blocks, over a locked BuddyHeap", (id, size) => HeapTarget.Of(id, ConcurrentHeap.Create(size))),
        Engine.Tested("concurrent-heap-buddy", "ConcurrentHeap without the size-class tier: per-thread buddy caches only, 256 KiB per order", (id, size) => HeapTarget.Of(id, ConcurrentHeap.Create(size, ConcurrentBuddyOnly))),
        Engine.Tested("concurrent-heap-hardened", "ConcurrentHeap with hardened mode: every call under the lock through the hardened core", (id, size) => HeapTarget.Of(id, ConcurrentHeap.Create(size, BuddyHeapOptions.ConcurrentDefault with { Hardening = HeapTarget.ThrowingHardening }))),
        Engine.Tested("buddy-tree", "BuddyTree: the seed's segment tree, offsets into one region", (id, size) => HeapTarget.Of(id, new BuddyTreeHeap(size))),
        Engine.Tested("slab-heap", "SlabHeap: size-class slabs on buddy blocks, exact large blocks, no lock", (id, size) => HeapTarget.Of(id, SlabHeap.Create(size))),
        Engine.Tested("shared-heap", "SharedHeap: a crash-consistent heap in a mapped file, shared by processes (a robust process-shared mutex per call)", SharedHeapTestHeap.Target),
        Engine.TestedOnly("frame-allocator", "FrameAllocator: the crate's frame allocator over 4 KiB frames", (id, size) => HeapTarget.Of(id, new FrameAllocatorHeap(size))),
        Engine.Peer("glibc", "libc malloc/free"),
        Engine.Peer("native-memory", "NativeMemory.Alloc/Free"),
        Engine.Peer("mimalloc", "mimalloc mi_malloc/mi_free"),
        Engine.Pool("buddy-pool", "BuddyMemoryPool on the default heap (ConcurrentHeap)"),
        Engine.Pool("array-pool", "ArrayPool<byte>.Shared"),
        Engine.Pool("memory-pool", "MemoryPool<byte>.Shared"),
        Engine.Pool("kestrel-pool", "Kestrel's pinned-block pool from its IMemoryPoolFactory<byte> (4 KiB blocks; larger rents from ArrayPool<byte>.Shared, as Pipelines does)"),
    ];

    /// <summary>The ids of the engines the reliability workloads run (soak, the fuzzer).</summary>
    public static IReadOnlyList<string> TargetNames { get; } = [.. All.Where(e => e.IsTestable).Select(e => e.Id)];

    /// <summary>The ids of the engines that are safe from many threads (stress).</summary>
    public static IReadOnlyList<string> ThreadSafeNames => [.. All.Where(e => e.IsThreadSafe).Select(e => e.Id)];

    /// <summary>The ids of the engines that implement the pointer heap contract themselves (the misuse matrix).</summary>
    public static IReadOnlyList<string> PointerHeapNames => [.. All.Where(e => e.IsPointerHeap).Select(e => e.Id)];

    /// <summary>The ids of the engines whose blocks can be listed at their addresses (what <c>buddy map</c> draws).</summary>
    public static IReadOnlyList<string> SnapshotNames => [.. All.Where(e => e.CanSnapshot).Select(e => e.Id)];

    /// <summary>A factory per testable engine, for <see cref="ByteScript.RunOnAllEngines"/>.</summary>
    public static IReadOnlyList<Func<nuint, HeapTarget>> TargetFactories { get; } = [.. All.Where(e => e.IsTestable).Select(e => (Func<nuint, HeapTarget>)e.CreateTarget)];

    /// <summary>The engine with <paramref name="id"/> (case-insensitive), or null.</summary>
    public static Engine? Find(string id) => All.FirstOrDefault(e => string.Equals(e.Id, id, StringComparison.OrdinalIgnoreCase));

    /// <summary>The engine under test <paramref name="id"/> over a new heap of <paramref name="heapSize"/> bytes.</summary>
    /// <exception cref="ArgumentException">No testable engine has that id; the message lists the known ones.</exception>
    public static HeapTarget CreateTarget(string id, nuint heapSize)
        => Find(id) is { IsTestable: true } engine
            ? engine.CreateTarget(heapSize)
            : throw new ArgumentException($"unknown engine '{id}'; expected one of: {string.Join(", ", TargetNames)}.", nameof(id));
}
