using BuddySystem.Cli.Replay;

namespace BuddySystem.Cli.Bench;

/// <summary>Binds a struct adapter to the generic loops, so each allocator gets its own devirtualised copy.</summary>
/// <typeparam name="T">The adapter.</typeparam>
/// <param name="id">The allocator's id.</param>
/// <param name="description">One line for help and docs.</param>
/// <param name="create">A fresh adapter over a heap of the given size.</param>
/// <param name="unavailable">Why it cannot run here, or null.</param>
/// <param name="threadSafe">The engine's thread safety, asked when first needed, where the adapter's static answer is only
/// the conservative one (<see cref="TargetAllocator{THot}"/> serves every engine of the registry).</param>
internal sealed class BenchAllocatorEntry<T>(string id, string description, Func<nuint, T> create, Func<string?>? unavailable = null, Func<bool>? threadSafe = null)
    : BenchAllocatorEntry(id, description)
    where T : struct, IBenchAllocator
{
    public override bool IsThreadSafe => threadSafe?.Invoke() ?? T.IsThreadSafe;

    public override bool IsArena => T.IsArena;

    public override string? Unavailable => unavailable?.Invoke();

    public override Measurement Measure(WorkloadCase workload, BenchScale scale, nuint heapSize)
    {
        T allocator = create(heapSize);
        try
        {
            return BenchWorkloads.Run(ref allocator, workload, scale);
        }
        finally
        {
            allocator.Dispose();
        }
    }

    public override ReplayPass Replay(CompiledTrace trace, nuint heapSize, bool verify, Action<long>? progress)
    {
        T allocator = create(heapSize);
        try
        {
            return verify ? TraceReplayer.RunVerified(ref allocator, trace, progress) : TraceReplayer.RunTimed(ref allocator, trace);
        }
        finally
        {
            allocator.Dispose();
        }
    }
}
