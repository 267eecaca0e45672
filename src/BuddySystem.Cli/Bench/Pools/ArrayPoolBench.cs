using System.Buffers;

namespace BuddySystem.Cli.Bench.Pools;

/// <summary><c>array-pool</c>: <see cref="ArrayPool{T}.Shared"/>, where a .NET developer gets byte buffers today.</summary>
internal readonly struct ArrayPoolBench : IBenchPool
{
    /// <summary>The shared pool; it is process-wide, so there is nothing to create.</summary>
    public static ArrayPoolBench Create(int threads) => default;

    public object Rent(int size) => ArrayPool<byte>.Shared.Rent(size);

    public Span<byte> Bytes(object buffer, int size) => ((byte[])buffer).AsSpan(0, size);

    public void Return(object buffer) => ArrayPool<byte>.Shared.Return((byte[])buffer);

    public void Dispose()
    {
    }
}
