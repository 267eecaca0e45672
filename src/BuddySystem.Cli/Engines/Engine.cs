using BuddySystem.Cli.Bench;
using BuddySystem.Testing;

namespace BuddySystem.Cli.Engines;

/// <summary>
/// One engine the buddy tool knows, under a stable id, with what each command needs from it: a bench adapter
/// (<c>bench</c>, <c>replay</c>) and an engine under test (<c>soak</c>, <c>stress</c>, the fuzzer, the reliability tests).
/// Register one in <see cref="EngineCatalog.All"/>.
/// </summary>
internal sealed class Engine
{
    private readonly Func<nuint, HeapTarget>? _target;

    private Engine(string id, string description, BenchAllocatorEntry? bench, Func<nuint, HeapTarget>? target)
    {
        Id = id;
        Description = description;
        Bench = bench;
        _target = target;
    }

    /// <summary>The id used by <c>-a/--allocator</c>, tables and JSON (e.g. <c>buddy-heap</c>).</summary>
    public string Id { get; }

    /// <summary>One line for <c>--help</c> and docs.</summary>
    public string Description { get; }

    /// <summary>What <c>bench</c> and <c>replay</c> run; null for an engine they do not measure.</summary>
    public BenchAllocatorEntry? Bench { get; }

    /// <summary>Whether <see cref="CreateTarget"/> works: the engine runs under the reliability workloads.</summary>
    public bool IsTestable => _target is not null;

    /// <summary>The engine under test over a new heap of <paramref name="heapSize"/> bytes.</summary>
    /// <exception cref="NotSupportedException">The engine is a peer (glibc, mimalloc) with no checks to run.</exception>
    public HeapTarget CreateTarget(nuint heapSize)
        => _target is null ? throw new NotSupportedException($"{Id} is measured only; it has no checks to run.") : _target(heapSize);

    /// <summary>
    /// An engine with its own struct bench adapter <typeparamref name="T"/> (direct, devirtualised calls in the timed
    /// loops) and, for the project's engines, an engine under test.
    /// </summary>
    public static Engine Measured<T>(string id, string description, Func<nuint, T> bench, Func<nuint, HeapTarget>? target = null, Func<string?>? unavailable = null)
        where T : struct, IBenchAllocator
        => new(id, description, new BenchAllocatorEntry<T>(id, description, bench, unavailable), target);

    /// <summary>
    /// An engine known only through its <see cref="HeapTarget"/>: it joins every command at once, bench and replay
    /// calling it through <see cref="IAllocator"/> (<see cref="TargetAllocator"/>). Give it a struct adapter with
    /// <see cref="Measured"/> when its timings must not include the interface call.
    /// </summary>
    public static Engine Heap(string id, string description, Func<nuint, HeapTarget> target, bool threadSafe)
        => new(id, description, new BenchAllocatorEntry<TargetAllocator>(id, description, size => new TargetAllocator(target(size)), threadSafe: threadSafe), target);

    /// <summary>
    /// A buffer pool for the <c>pool</c> workload (<see cref="Bench.Pools.PoolWorkload"/>): ours or a peer, through a
    /// struct adapter created per run for the given number of renting threads. It runs no other workload and no checks.
    /// </summary>
    public static Engine Pool<T>(string id, string description, Func<int, T> create)
        where T : struct, Bench.Pools.IBenchPool
        => new(id, description, new Bench.Pools.BenchPoolEntry<T>(id, description, create), target: null);

    /// <summary>An engine that runs only under the reliability workloads (it has no pointer speed to compare).</summary>
    public static Engine TestedOnly(string id, string description, Func<nuint, HeapTarget> target)
        => new(id, description, bench: null, target);
}
