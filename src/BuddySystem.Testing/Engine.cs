namespace BuddySystem.Testing;

/// <summary>
/// One engine under a stable id, with what each user needs from it: an engine under test (<c>soak</c>, <c>stress</c>,
/// the fuzzer, the reliability tests, <c>bench</c> and <c>replay</c> through it when the tool has no struct adapter), or
/// only an id the tool's bench adapters answer to (the peers). Register one in <see cref="EngineCatalog.All"/>.
/// </summary>
internal sealed class Engine
{
    private readonly Func<string, nuint, HeapTarget>? _target;
    private readonly Lazy<(bool ThreadSafe, bool PointerHeap, bool Snapshot)> _probe;

    private Engine(string id, string description, Func<string, nuint, HeapTarget>? target, bool isMeasured)
    {
        Id = id;
        Description = description;
        _target = target;
        IsMeasured = isMeasured;
        // What the engine says of itself, read once from a small instance (its HeapTarget.Of states it).
        _probe = new(() =>
        {
            using HeapTarget probe = CreateTarget(4096);
            return (probe.IsThreadSafe, probe.IsPointerHeap, probe.CanSnapshot);
        });
    }

    /// <summary>The id used by <c>-a/--allocator</c>, tables and JSON (e.g. <c>buddy-heap</c>).</summary>
    public string Id { get; }

    /// <summary>One line for <c>--help</c> and docs.</summary>
    public string Description { get; }

    /// <summary>Whether <c>bench</c> and <c>replay</c> measure it (a pointer speed worth comparing).</summary>
    public bool IsMeasured { get; }

    /// <summary>Whether <see cref="CreateTarget"/> works: the engine runs under the reliability workloads.</summary>
    public bool IsTestable => _target is not null;

    /// <summary>Whether the engine is safe from many threads at once (<c>stress</c>); false for a peer, which has no target.</summary>
    public bool IsThreadSafe => IsTestable && _probe.Value.ThreadSafe;

    /// <summary>Whether the engine implements the pointer heap contract itself (the misuse matrix).</summary>
    public bool IsPointerHeap => IsTestable && _probe.Value.PointerHeap;

    /// <summary>Whether the engine's target lists its blocks at their addresses (<c>buddy map</c> draws it).</summary>
    public bool CanSnapshot => IsTestable && _probe.Value.Snapshot;

    /// <summary>The engine under test over a new heap of <paramref name="heapSize"/> bytes.</summary>
    /// <exception cref="NotSupportedException">The engine is a peer (glibc, mimalloc) with no checks to run.</exception>
    public HeapTarget CreateTarget(nuint heapSize)
        => _target is null ? throw new NotSupportedException($"{Id} is measured only; it has no checks to run.") : _target(Id, heapSize);

    /// <summary>
    /// An engine of this project: it runs under every reliability workload and is measured, through a struct adapter of
    /// the buddy tool when it has one for <paramref name="id"/>, else through its <see cref="HeapTarget"/>.
    /// </summary>
    /// <param name="id">The engine's id.</param>
    /// <param name="description">One line for help and docs.</param>
    /// <param name="target">The engine under test, given the id and a heap size.</param>
    public static Engine Tested(string id, string description, Func<string, nuint, HeapTarget> target)
        => new(id, description, target, isMeasured: true);

    /// <summary>An engine that runs only under the reliability workloads (it has no pointer speed to compare).</summary>
    public static Engine TestedOnly(string id, string description, Func<string, nuint, HeapTarget> target)
        => new(id, description, target, isMeasured: false);

    /// <summary>A peer the project measures itself against (glibc, mimalloc): bench and replay only, through the buddy
    /// tool's struct adapter for <paramref name="id"/>.</summary>
    public static Engine Peer(string id, string description) => new(id, description, target: null, isMeasured: true);

    /// <summary>A buffer pool for the bench's <c>pool</c> workload (ours or a .NET one): measured only, through the buddy
    /// tool's pool adapter for <paramref name="id"/>, which runs no other workload.</summary>
    public static Engine Pool(string id, string description) => new(id, description, target: null, isMeasured: true);
}
