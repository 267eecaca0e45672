using BuddySystem.Cli.Bench;
using BuddySystem.Cli.Bench.Pools;
using BuddySystem.Testing;

namespace BuddySystem.Cli.Engines;

/// <summary>
/// Every engine of the buddy tool, in table order (the peers last). A new engine joins bench, replay, soak, stress, the
/// fuzzer and the reliability tests by one line in <see cref="All"/>: <see cref="Engine.Heap"/> for an
/// <see cref="IAllocator"/>, or <see cref="Engine.Measured"/> with a struct adapter; a buffer pool by
/// <see cref="Engine.Pool"/> (it joins the <c>pool</c> workload only).
/// </summary>
internal static class EngineCatalog
{
    /// <summary>The registrations.</summary>
    public static IReadOnlyList<Engine> All { get; } =
    [
        Engine.Measured("buddy-heap", "BuddyHeap, no lock", BuddyHeapAllocator.Create, size => HeapTarget.Of("buddy-heap", BuddyHeap.Create(size))),
        Engine.Measured("buddy-heap-eager", "BuddyHeap with eager merging (no lazy caches)", BuddyHeapAllocator.CreateEager, size => HeapTarget.Of("buddy-heap-eager", BuddyHeap.Create(size, BuddyHeapOptions.Eager))),
        Engine.Measured("buddy-heap-hardened", "BuddyHeap with hardened mode (poison, canary, footer)", BuddyHeapAllocator.CreateHardened, size => HeapTarget.Of("buddy-heap-hardened", BuddyHeap.Create(size, BuddyHeapOptions.Default with { Hardening = HeapTarget.ThrowingHardening }))),
        Engine.Measured("locked-heap", "LockedHeap: BuddyHeap behind a lock", LockedHeapAllocator.Create, size => HeapTarget.Of("locked-heap", LockedHeap.Create(size))),
        Engine.Measured("concurrent-heap", "ConcurrentHeap, the thread-safe default: per-thread slabs of size classes up to 8 KiB, per-thread caches of larger buddy blocks, over a locked BuddyHeap", ConcurrentHeapAllocator.Create, size => HeapTarget.Of("concurrent-heap", ConcurrentHeap.Create(size))),
        Engine.Measured("concurrent-heap-buddy", "ConcurrentHeap without the size-class tier: per-thread buddy caches only (libbuddymalloc's configuration)", ConcurrentHeapAllocator.CreateBuddyOnly, size => HeapTarget.Of("concurrent-heap-buddy", ConcurrentHeap.Create(size, ConcurrentHeapAllocator.BuddyOnly))),
        Engine.Heap("concurrent-heap-hardened", "ConcurrentHeap with hardened mode: every call under the lock through the hardened core", size => HeapTarget.Of("concurrent-heap-hardened", ConcurrentHeap.Create(size, BuddyHeapOptions.ConcurrentDefault with { Hardening = HeapTarget.ThrowingHardening })), threadSafe: true),
        Engine.Measured("buddy-tree", "BuddyTree: the seed's segment tree, offsets into one region", BuddyTreeAllocator.Create, size => HeapTarget.Of("buddy-tree", new BuddyTreeHeap(size))),
        Engine.Measured("slab-heap", "SlabHeap: size-class slabs on buddy blocks, exact large blocks, no lock", SlabHeapAllocator.Create, size => HeapTarget.Of("slab-heap", SlabHeap.Create(size))),
        Engine.Measured("shared-heap", "SharedHeap: a crash-consistent heap in a mapped file, shared by processes (a robust process-shared mutex per call)", SharedHeapAllocator.Create, size => SharedHeapTestHeap.Target("shared-heap", size), unavailable: () => SharedHeapAllocator.Unavailable),
        Engine.TestedOnly("frame-allocator", "FrameAllocator: the crate's frame allocator over 4 KiB frames", size => HeapTarget.Of("frame-allocator", new FrameAllocatorHeap(size))),
        Engine.Measured("glibc", "libc malloc/free", GlibcAllocator.Create, unavailable: () => Libc.Unavailable),
        Engine.Measured("native-memory", "NativeMemory.Alloc/Free", NativeMemoryAllocator.Create),
        Engine.Measured("mimalloc", "mimalloc mi_malloc/mi_free", MimallocAllocator.Create, unavailable: () => Mimalloc.Unavailable),
        Engine.Pool("buddy-pool", "BuddyMemoryPool on the default heap (ConcurrentHeap)", BuddyPoolBench.Create),
        Engine.Pool("array-pool", "ArrayPool<byte>.Shared", ArrayPoolBench.Create),
        Engine.Pool("memory-pool", "MemoryPool<byte>.Shared", MemoryPoolBench.Create),
        Engine.Pool("kestrel-pool", "Kestrel's pinned-block pool from its IMemoryPoolFactory<byte> (4 KiB blocks; larger rents from ArrayPool<byte>.Shared, as Pipelines does)", KestrelPoolBench.Create),
    ];

    /// <summary>The engines bench and replay measure, in table order.</summary>
    public static IReadOnlyList<BenchAllocatorEntry> Measured { get; } = [.. All.Where(e => e.Bench is not null).Select(e => e.Bench!)];

    /// <summary>The ids of the engines the reliability workloads run (soak, the fuzzer).</summary>
    public static IReadOnlyList<string> TargetNames { get; } = [.. All.Where(e => e.IsTestable).Select(e => e.Id)];

    /// <summary>The ids of the engines that are safe from many threads (stress).</summary>
    public static IReadOnlyList<string> ThreadSafeNames { get; } = [.. All.Where(e => e.IsTestable && e.Bench is { IsThreadSafe: true }).Select(e => e.Id)];

    /// <summary>The ids of the engines that implement the pointer heap contract themselves (the misuse matrix).</summary>
    public static IReadOnlyList<string> PointerHeapNames { get; } = [.. TargetNames.Where(IsPointerHeap)];

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

    private static bool IsPointerHeap(string id)
    {
        using HeapTarget target = CreateTarget(id, 4096);
        return target.IsPointerHeap;
    }
}
