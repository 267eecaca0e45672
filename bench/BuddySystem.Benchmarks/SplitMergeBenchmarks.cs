using BenchmarkDotNet.Attributes;

namespace BuddySystem.Benchmarks;

/// <summary>
/// The deepest split and merge: allocate 16 B from a heap whose only free block is the whole region (log2(region / 16)
/// splits), then free it (as many merges when caches are off; a cache hit when they are on).
/// </summary>
[MemoryDiagnoser]
public unsafe class SplitMergeBenchmarks : IDisposable
{
    private const int Operations = 256;

    private BuddyHeap _heap = null!;

    /// <summary>Region size: 64 KiB (12 orders to split) or 32 MiB (21 orders).</summary>
    [Params(64 << 10, 32 << 20)]
    public int RegionSize { get; set; }

    /// <summary>BuddyHeap's lazy per-order caches on or off.</summary>
    [Params(true, false)]
    public bool LazyCaches { get; set; }

    [GlobalSetup]
    public void Setup() => _heap = BuddyHeap.Create((nuint)RegionSize, new BuddyHeapOptions { LazyCaches = LazyCaches });

    [Benchmark(OperationsPerInvoke = Operations)]
    public void AllocateFreeSmallestFromWholeRegion()
    {
        var layout = new Layout(16, 8);
        for (int i = 0; i < Operations; i++)
        {
            void* block = _heap.Allocate(layout);
            _heap.Deallocate(block, layout);
        }
    }

    [GlobalCleanup]
    public void Dispose()
    {
        _heap?.Dispose();
        GC.SuppressFinalize(this);
    }
}
