using System.Buffers;
using BuddySystem.Buffers;

namespace BuddySystem.Cli.Bench.Pools;

/// <summary><c>buddy-pool</c>: <see cref="BuddyMemoryPool.Create"/>, the pool on the default heap (a <see cref="ConcurrentHeap"/>).</summary>
internal readonly struct BuddyPoolBench : IBenchPool
{
    private readonly BuddyMemoryPool _pool;

    private BuddyPoolBench(BuddyMemoryPool pool) => _pool = pool;

    /// <summary>The heap per renting thread: the workload's live set is a few MiB a thread (16 buffers, at most 64 more in
    /// flight to the returning thread), so 64 MiB leaves room for the rare run of 1 MiB buffers without a failed rent.</summary>
    public const int HeapBytesPerThread = 256 << 20;

    /// <summary>A pool over a new default heap of <see cref="HeapBytesPerThread"/> × <paramref name="threads"/> bytes.</summary>
    public static BuddyPoolBench Create(int threads) => new(BuddyMemoryPool.Create((nuint)((long)HeapBytesPerThread * threads)));

    public object Rent(int size) => _pool.Rent(size);

    public Span<byte> Bytes(object buffer, int size) => ((IMemoryOwner<byte>)buffer).Memory.Span[..size];

    public void Return(object buffer) => ((IMemoryOwner<byte>)buffer).Dispose();

    public void Dispose() => _pool.Dispose();
}
