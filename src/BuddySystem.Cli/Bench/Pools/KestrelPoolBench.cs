using System.Buffers;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Connections;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace BuddySystem.Cli.Bench.Pools;

/// <summary>
/// <c>kestrel-pool</c>: Kestrel's pinned-block pool, taken from the <see cref="IMemoryPoolFactory{T}"/> that Kestrel
/// registers, as the Kestrel bench server gets it (a host is built, never started).
/// </summary>
/// <remarks>Kestrel's pool hands out only its block size (4 KiB); a larger request goes to <see cref="ArrayPool{T}.Shared"/>,
/// which is what <c>System.IO.Pipelines</c> does with a pool whose <see cref="MemoryPool{T}.MaxBufferSize"/> is too small. So
/// this row is what a Kestrel app's buffers cost for the same mix of sizes.</remarks>
internal readonly struct KestrelPoolBench : IBenchPool
{
    private readonly WebApplication _host;
    private readonly MemoryPool<byte> _pool;
    private readonly int _maxBufferSize;

    private KestrelPoolBench(WebApplication host, MemoryPool<byte> pool)
    {
        _host = host;
        _pool = pool;
        _maxBufferSize = pool.MaxBufferSize;
    }

    /// <summary>A new pool from Kestrel's factory.</summary>
    public static KestrelPoolBench Create(int threads)
    {
        WebApplicationBuilder builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        WebApplication host = builder.Build();
        MemoryPool<byte> pool = host.Services.GetRequiredService<IMemoryPoolFactory<byte>>().Create();
        return new KestrelPoolBench(host, pool);
    }

    public object Rent(int size) => size <= _maxBufferSize ? _pool.Rent(size) : ArrayPool<byte>.Shared.Rent(size);

    public Span<byte> Bytes(object buffer, int size) =>
        buffer is byte[] array ? array.AsSpan(0, size) : ((IMemoryOwner<byte>)buffer).Memory.Span[..size];

    public void Return(object buffer)
    {
        if (buffer is byte[] array)
        {
            ArrayPool<byte>.Shared.Return(array);
        }
        else
        {
            ((IMemoryOwner<byte>)buffer).Dispose();
        }
    }

    public void Dispose()
    {
        _pool.Dispose();
        ((IDisposable)_host).Dispose();
    }
}
