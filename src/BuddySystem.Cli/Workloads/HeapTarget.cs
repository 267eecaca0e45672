namespace BuddySystem.Cli.Workloads;

/// <summary>
/// A pointer allocator under test together with the checks the reliability workloads (soak, stress, fuzz) run on it:
/// one place that knows how to build each engine by name, so every workload covers every engine.
/// </summary>
internal sealed unsafe class HeapTarget : IDisposable
{
    private readonly IDisposable _owner;
    private readonly Action _validate;
    private readonly Func<HeapStats> _stats;
    private readonly Action<nint, nuint>? _addRegion;

    private HeapTarget(string name, IAllocator allocator, IDisposable owner, Action validate, Func<HeapStats> stats, Action<nint, nuint>? addRegion, bool threadSafe)
    {
        Name = name;
        Allocator = allocator;
        _owner = owner;
        _validate = validate;
        _stats = stats;
        _addRegion = addRegion;
        IsThreadSafe = threadSafe;
    }

    /// <summary>The engine names <see cref="Create"/> accepts.</summary>
    internal static IReadOnlyList<string> Names { get; } = ["buddy-heap", "locked-heap"];

    /// <summary>The engine names that are safe from many threads (for <c>buddy stress</c>).</summary>
    internal static IReadOnlyList<string> ThreadSafeNames { get; } = ["locked-heap"];

    internal string Name { get; }

    internal IAllocator Allocator { get; }

    internal bool IsThreadSafe { get; }

    internal bool CanAddRegion => _addRegion != null;

    /// <summary>Builds the engine called <paramref name="name"/> over a new native region of <paramref name="size"/> bytes.</summary>
    internal static HeapTarget Create(string name, nuint size) => name switch
    {
        "buddy-heap" => FromBuddyHeap(BuddyHeap.Create(size)),
        "locked-heap" => FromLockedHeap(LockedHeap.Create(size)),
        _ => throw new ArgumentException($"Unknown engine '{name}'; expected one of: {string.Join(", ", Names)}.", nameof(name)),
    };

    private static HeapTarget FromBuddyHeap(BuddyHeap heap)
        => new("buddy-heap", heap, heap, heap.Validate, () => heap.Stats, (start, size) => heap.AddRegion((void*)start, size), threadSafe: false);

    private static HeapTarget FromLockedHeap(LockedHeap heap)
        => new("locked-heap", heap, heap, heap.Validate, () => heap.Stats, (start, size) => heap.AddRegion((void*)start, size), threadSafe: true);

    internal void Validate() => _validate();

    internal HeapStats Stats => _stats();

    /// <summary>Adds [start, start + size) to the engine; the caller keeps the memory alive until disposal.</summary>
    internal void AddRegion(nint start, nuint size)
    {
        if (_addRegion == null)
        {
            throw new NotSupportedException($"{Name} cannot take more regions.");
        }

        _addRegion(start, size);
    }

    public void Dispose() => _owner.Dispose();
}
