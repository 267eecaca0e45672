using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Engines;

namespace BuddySystem.Benchmarks;

/// <summary>
/// Split-heavy: allocate <see cref="Count"/> 16-byte blocks from an empty heap, so most allocations split a larger block
/// (one split each on average, the first one 21). The blocks are freed after each iteration, outside the measurement.
/// </summary>
[MemoryDiagnoser]
[InvocationCount(1)]
public unsafe class SplitHeavyBenchmarks : IDisposable
{
    private BuddyHeap _heap = null!;
    private nint[] _blocks = [];

    /// <summary>Blocks allocated per invocation.</summary>
    [Params(1024, 65536)]
    public int Count { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        // Eager: caches would hand back blocks without splitting, which is not what this measures.
        _heap = BuddyHeap.Create(32 << 20, BuddyHeapOptions.Eager);
        _blocks = new nint[Count];
    }

    [Benchmark]
    public void AllocateFromEmptyHeap()
    {
        var layout = new Layout(16, 8);
        for (int i = 0; i < _blocks.Length; i++)
        {
            _blocks[i] = (nint)_heap.Allocate(layout);
        }
    }

    [IterationCleanup]
    public void FreeAll()
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
