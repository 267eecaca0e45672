namespace BuddySystem.Cli.Bench.Pools;

/// <summary>
/// What the <c>pool</c> workload needs from a buffer pool: rent a buffer of at least a size, reach its bytes, return it.
/// A struct adapter, named by an <see cref="Testing.Engine.Pool"/> of <see cref="Testing.EngineCatalog.All"/> and bound in <see cref="BenchAllocators"/>.
/// </summary>
/// <remarks>A buffer is an object: the pool's <see cref="System.Buffers.IMemoryOwner{T}"/>, or the array itself for
/// <see cref="System.Buffers.ArrayPool{T}"/>. The workload is generic over the adapter, so the adapter's own calls are direct;
/// the pools' virtual calls are what a user pays too.</remarks>
internal interface IBenchPool : IDisposable
{
    /// <summary>Rents a buffer of at least <paramref name="size"/> bytes.</summary>
    object Rent(int size);

    /// <summary>The buffer's first <paramref name="size"/> bytes (what was asked for).</summary>
    Span<byte> Bytes(object buffer, int size);

    /// <summary>Gives the buffer back; from any thread, exactly once.</summary>
    void Return(object buffer);
}
