using BuddySystem.AspNetCore;

namespace BuddySystem.KestrelBench;

/// <summary>One memory pool the benchmark server can run Kestrel on.</summary>
/// <param name="Name">The <c>--pool</c> value.</param>
/// <param name="Description">One line for the report.</param>
/// <param name="Configure">Sets up <see cref="BuddyMemoryPoolFactory"/>; null for Kestrel's own pool.</param>
/// <param name="Validate">Checks the heap's invariants when no request is running; throws when one does not hold.</param>
public sealed record BenchPool(
    string Name,
    string Description,
    Action<BuddyMemoryPoolFactoryOptions>? Configure,
    Action<IAllocator>? Validate)
{
    /// <summary>Every pool, in the order the driver runs them. A new pool (such as the slab front's thread-safe form)
    /// joins the server, the driver and the chart by adding one line here.</summary>
    public static IReadOnlyList<BenchPool> All { get; } =
    [
        new("kestrel", "Kestrel's default pinned-block pool (evicts idle blocks)", null, null),
        new("buddy-locked", "AddBuddyMemoryPool over a LockedHeap", o => o.UseConcurrentHeap = false, heap => ((LockedHeap)heap).Validate()),
        new("buddy-concurrent", "AddBuddyMemoryPool over a ConcurrentHeap", o => o.UseConcurrentHeap = true, heap => ((ConcurrentHeap)heap).Validate()),
    ];

    /// <summary>The pool named <paramref name="name"/>, or null.</summary>
    /// <param name="name">A <see cref="Name"/>.</param>
    /// <returns>The pool, or null when no pool has that name.</returns>
    public static BenchPool? Find(string name) => All.FirstOrDefault(p => p.Name == name);
}
