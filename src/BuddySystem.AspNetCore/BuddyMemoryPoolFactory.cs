using System.Buffers;
using BuddySystem.Buffers;
using BuddySystem.Diagnostics;
using Microsoft.AspNetCore.Connections;
using Microsoft.Extensions.Options;

namespace BuddySystem.AspNetCore;

/// <summary>
/// Kestrel's source of connection buffers, backed by one BuddySystem heap: every pool it creates is a
/// <see cref="BuddyMemoryPool"/> over the same thread-safe heap (<see cref="LockedHeap"/> or <see cref="ConcurrentHeap"/>).
/// </summary>
/// <remarks>
/// <para>The heap's region is a <see cref="PinnedArrayRegion"/>, not native memory: Kestrel's socket transport sends a
/// multi-segment response as a list of array segments and throws "Buffer backed by array was expected" for any other memory.
/// The buddy heap still decides every block; the array is pinned once, so buffers need no GC handle.</para>
/// <para>Register it with <see cref="BuddyMemoryPoolServiceCollectionExtensions.AddBuddyMemoryPool"/>; Kestrel's socket
/// transport then takes its pools from here instead of its pinned-array pool.</para>
/// <para>Lifetime: the heap lives as long as the factory; the dependency-injection container disposes the factory when the host
/// is disposed, after Kestrel has stopped and returned its buffers.</para>
/// <para>The heap is published on the <c>BuddySystem</c> meter under <see cref="BuddyMemoryPoolFactoryOptions.MetricsName"/>
/// (<c>kestrel</c> by default); see <see cref="BuddyMetrics"/>.</para>
/// <para>Thread safety: every member is safe from any thread.</para>
/// </remarks>
public sealed class BuddyMemoryPoolFactory : IMemoryPoolFactory<byte>, IDisposable
{
    private readonly BuddyMemoryPoolOptions _poolOptions;
    private readonly PinnedArrayRegion _region;
    private readonly IDisposable? _metrics;
    private readonly IDisposable _heap;
    private int _pools;

    /// <summary>Creates the factory and its heap.</summary>
    /// <param name="options">Heap size and pool settings.</param>
    /// <exception cref="ArgumentNullException"><paramref name="options"/> is null.</exception>
    /// <exception cref="ArgumentOutOfRangeException">The heap size is below 4096 bytes or above <see cref="MaxHeapSize"/>.</exception>
    public BuddyMemoryPoolFactory(IOptions<BuddyMemoryPoolFactoryOptions> options)
    {
        ArgumentNullException.ThrowIfNull(options);
        BuddyMemoryPoolFactoryOptions settings = options.Value;
        ArgumentOutOfRangeException.ThrowIfLessThan(settings.HeapSize, 4096, nameof(options) + "." + nameof(settings.HeapSize));
        ArgumentOutOfRangeException.ThrowIfGreaterThan(settings.HeapSize, MaxHeapSize, nameof(options) + "." + nameof(settings.HeapSize));
        _poolOptions = settings.Pool ?? new BuddyMemoryPoolOptions();

        // Aligned so the largest buffers (1 MiB by default) are whole blocks from the start of the region.
        int size = (int)settings.HeapSize;
        _region = new PinnedArrayRegion(size, Math.Min(1 << 20, 1 << System.Numerics.BitOperations.Log2((uint)size)));
        if (settings.UseConcurrentHeap)
        {
            // The owning overloads: the heap itself keeps the array alive, so a heap that outlives the factory (a
            // ConcurrentHeap trims after full collections until disposed) never writes into a collected array.
            var heap = new ConcurrentHeap();
            heap.AddRegion(_region);
            _heap = heap;
            Allocator = heap;
            Heap = heap;
        }
        else
        {
            var engine = new BuddyHeap();
            engine.AddRegion(_region);
            var heap = new LockedHeap(engine);
            _heap = heap;
            Allocator = heap;
            Heap = heap;
        }

        if (settings.MetricsName is not null)
        {
            _metrics = BuddyMetrics.Register(Heap, settings.MetricsName);
        }
    }

    /// <summary>The largest <see cref="BuddyMemoryPoolFactoryOptions.HeapSize"/>: 1 GiB, since the heap is one pinned array.</summary>
    public const long MaxHeapSize = 1L << 30;

    /// <summary>The heap every pool rents from: a <see cref="LockedHeap"/>, or a <see cref="ConcurrentHeap"/> when
    /// <see cref="BuddyMemoryPoolFactoryOptions.UseConcurrentHeap"/> is set.</summary>
    public IAllocator Allocator { get; }

    /// <summary>The same heap's accounting: its <see cref="IHeapStatsSource.Stats"/> show what Kestrel holds.</summary>
    public IHeapStatsSource Heap { get; }

    /// <summary>Pools created so far.</summary>
    public int PoolsCreated => Volatile.Read(ref _pools);

    /// <summary>Creates a pool over the factory's heap; Kestrel disposes it when the listener that asked stops.</summary>
    /// <param name="options">Kestrel's pool options (the owner name is for its diagnostics; the pool does not use it).</param>
    /// <returns>A new <see cref="BuddyMemoryPool"/>.</returns>
    public MemoryPool<byte> Create(MemoryPoolOptions? options = null)
    {
        Interlocked.Increment(ref _pools);
        return new BuddyMemoryPool(Allocator, _region, _poolOptions);
    }

    /// <summary>Frees the heap. Call it only after Kestrel stopped; calling it again is harmless.</summary>
    public void Dispose()
    {
        _metrics?.Dispose();
        _heap.Dispose();
    }
}
