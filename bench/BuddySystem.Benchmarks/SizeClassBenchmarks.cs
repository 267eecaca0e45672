using BenchmarkDotNet.Attributes;

namespace BuddySystem.Benchmarks;

/// <summary>
/// The hot path of one size class: a free block of the size's order waits on its free list and its buddy is live, so
/// allocate pops it with no split and free pushes it back with no merge.
/// </summary>
[MemoryDiagnoser]
public unsafe class SizeClassBenchmarks : IDisposable
{
    private const int Operations = 1024;

    private BuddyHeap _heap = null!;
    private void* _buddy;

    /// <summary>Bytes per allocation.</summary>
    [Params(16, 256, 4096)]
    public int Size { get; set; }

    /// <summary>BuddyHeap's lazy per-order caches on (the default) or off (the tutorial's eager merging).</summary>
    [Params(true, false)]
    public bool LazyCaches { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        _heap = BuddyHeap.Create(32 << 20, new BuddyHeapOptions { LazyCaches = LazyCaches });
        var layout = new Layout((nuint)Size, 8);

        // Split once, keep one half live: its buddy is now a free block of exactly this order.
        _buddy = _heap.Allocate(layout);
        void* other = _heap.Allocate(layout);
        _heap.Deallocate(other, layout);
    }

    [Benchmark(OperationsPerInvoke = Operations)]
    public void AllocateFree()
    {
        var layout = new Layout((nuint)Size, 8);
        for (int i = 0; i < Operations; i++)
        {
            void* block = _heap.Allocate(layout);
            _heap.Deallocate(block, layout);
        }
    }

    [GlobalCleanup]
    public void Dispose()
    {
        if (_heap is not null && _buddy is not null)
        {
            _heap.Deallocate(_buddy, new Layout((nuint)Size, 8));
            _buddy = null;
        }

        _heap?.Dispose();
        GC.SuppressFinalize(this);
    }
}
