namespace BuddySystem.Cli.Bench;

/// <summary>The allocators <c>buddy bench</c> and <c>buddy replay</c> know. To add one: a struct implementing
/// <see cref="IBenchAllocator"/> and one line here.</summary>
internal static class BenchAllocators
{
    /// <summary>Every allocator, in table order (the peers last).</summary>
    public static IReadOnlyList<BenchAllocatorEntry> All { get; } =
    [
        new BenchAllocatorEntry<BuddyHeapAllocator>("buddy-heap", "BuddyHeap, no lock", BuddyHeapAllocator.Create),
        new BenchAllocatorEntry<BuddyHeapAllocator>("buddy-heap-eager", "BuddyHeap with eager merging (no lazy caches)", BuddyHeapAllocator.CreateEager),
        new BenchAllocatorEntry<BuddyHeapAllocator>("buddy-heap-hardened", "BuddyHeap with hardened mode (poison, canary, footer)", BuddyHeapAllocator.CreateHardened),
        new BenchAllocatorEntry<LockedHeapAllocator>("locked-heap", "LockedHeap: BuddyHeap behind a lock", LockedHeapAllocator.Create),
        new BenchAllocatorEntry<ConcurrentHeapAllocator>("concurrent-heap", "ConcurrentHeap: per-thread caches over a locked BuddyHeap", ConcurrentHeapAllocator.Create),
        new BenchAllocatorEntry<BuddyTreeAllocator>("buddy-tree", "BuddyTree: the seed's segment tree, offsets into one region", BuddyTreeAllocator.Create),
        new BenchAllocatorEntry<GlibcAllocator>("glibc", "libc malloc/free", GlibcAllocator.Create, () => Libc.Unavailable),
        new BenchAllocatorEntry<NativeMemoryAllocator>("native-memory", "NativeMemory.Alloc/Free", NativeMemoryAllocator.Create),
        new BenchAllocatorEntry<MimallocAllocator>("mimalloc", "mimalloc mi_malloc/mi_free", MimallocAllocator.Create, () => Mimalloc.Unavailable),
    ];

    /// <summary>The allocator with <paramref name="id"/>, or null.</summary>
    public static BenchAllocatorEntry? Find(string id) => All.FirstOrDefault(a => string.Equals(a.Id, id, StringComparison.OrdinalIgnoreCase));
}
