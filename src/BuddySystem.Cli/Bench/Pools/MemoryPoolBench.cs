using System.Buffers;

namespace BuddySystem.Cli.Bench.Pools;

/// <summary><c>memory-pool</c>: <see cref="MemoryPool{T}.Shared"/>, owners over <see cref="ArrayPool{T}.Shared"/> arrays.</summary>
internal readonly struct MemoryPoolBench : IBenchPool
{
    /// <summary>The shared pool; it is process-wide, so there is nothing to create.</summary>
    public static MemoryPoolBench Create(int threads) => default;

    public object Rent(int size) => MemoryPool<byte>.Shared.Rent(size);

    public Span<byte> Bytes(object buffer, int size) => ((IMemoryOwner<byte>)buffer).Memory.Span[..size];

    public void Return(object buffer) => ((IMemoryOwner<byte>)buffer).Dispose();

    public void Dispose()
    {
    }
}
