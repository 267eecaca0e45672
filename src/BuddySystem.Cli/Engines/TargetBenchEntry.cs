using BuddySystem.Cli.Bench;
using BuddySystem.Cli.Replay;
using BuddySystem.Testing;

namespace BuddySystem.Cli.Engines;

/// <summary>The bench and replay side of an engine registered with <see cref="Engine.Heap"/>.</summary>
internal sealed class TargetBenchEntry(string id, string description, Func<nuint, HeapTarget> target, bool threadSafe)
    : BenchAllocatorEntry(id, description)
{
    public override bool IsThreadSafe => threadSafe;

    public override bool IsArena => false;

    public override string? Unavailable => null;

    public override Measurement Measure(WorkloadCase workload, BenchScale scale, nuint heapSize)
    {
        var allocator = new TargetAllocator(target(heapSize));
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
        var allocator = new TargetAllocator(target(heapSize));
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
