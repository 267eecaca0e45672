using BenchmarkDotNet.Attributes;

namespace BuddySystem.Benchmarks;

/// <summary>
/// Merge-heavy: free <see cref="Count"/> 16-byte blocks in a shuffled order (W4's shape); every free whose buddy is
/// already free merges, up to the whole region at the end. The allocation and shuffle happen before each iteration.
/// </summary>
[MemoryDiagnoser]
[InvocationCount(1)]
public unsafe class MergeHeavyBenchmarks : IDisposable
{
    private BuddyHeap _heap = null!;
    private nint[] _blocks = [];

    /// <summary>Blocks freed per invocation.</summary>
    [Params(1024, 65536)]
    public int Count { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        // Eager, so each free really merges instead of parking the block in a cache.
        _heap = BuddyHeap.Create(32 << 20, BuddyHeapOptions.Eager);
        _blocks = new nint[Count];
    }

    [IterationSetup]
    public void AllocateShuffled()
    {
        var layout = new Layout(16, 8);
        for (int i = 0; i < _blocks.Length; i++)
        {
            _blocks[i] = (nint)_heap.Allocate(layout);
        }

        // A fixed seed so every iteration frees in the same order.
        new Random(0xF00D).Shuffle(_blocks);
    }

    [Benchmark]
    public void FreeShuffled()
    {
        var layout = new Layout(16, 8);
        foreach (nint block in _blocks)
        {
            _heap.Deallocate((void*)block, layout);
        }
    }

    [GlobalCleanup]
    public void Dispose()
    {
        _heap?.Dispose();
        GC.SuppressFinalize(this);
    }
}
