using BuddySystem.Buffers;

namespace BuddySystem.AspNetCore;

/// <summary>Settings of <see cref="BuddyMemoryPoolFactory"/>.</summary>
/// <remarks>Defaults: a 64 MiB <see cref="BuddySystem.ConcurrentHeap"/> (the thread-safe default heap), pools with <see cref="BuddyMemoryPoolOptions"/> defaults (4 KiB segments, buffers up to 1 MiB),
/// heap name <c>kestrel</c> in metrics.</remarks>
public sealed class BuddyMemoryPoolFactoryOptions
{
    /// <summary>Bytes for the one heap every pool of the factory rents from (a pinned array, at most 1 GiB). Default 64 MiB.</summary>
    /// <remarks>Kestrel buffers up to <c>MaxRequestBufferSize</c> (1 MiB by default) per connection in each direction; size the
    /// heap for the connections you expect. When it is full, the rent that failed throws <see cref="HeapExhaustedException"/>
    /// and Kestrel aborts that connection; the others go on.</remarks>
    public long HeapSize { get; set; } = 64L << 20;

    /// <summary>Whether the heap is a <see cref="BuddySystem.ConcurrentHeap"/> (the default heap: per-thread slabs and caches,
    /// no lock for most rents and returns) or, when false, a <see cref="LockedHeap"/> (one lock per rent and return, the
    /// tutorial's heap). Default <see langword="true"/>.</summary>
    public bool UseConcurrentHeap { get; set; } = true;

    /// <summary>Buffer sizes of the pools the factory creates.</summary>
    public BuddyMemoryPoolOptions Pool { get; set; } = new();

    /// <summary>The <c>buddy.heap.name</c> tag of the heap's metrics on the <c>BuddySystem</c> meter; null to not publish them. Default <c>kestrel</c>.</summary>
    public string? MetricsName { get; set; } = "kestrel";
}
