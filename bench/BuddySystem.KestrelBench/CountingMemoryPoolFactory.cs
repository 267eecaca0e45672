using System.Buffers;
using BuddySystem.AspNetCore;
using Microsoft.AspNetCore.Connections;

namespace BuddySystem.KestrelBench;

/// <summary>Wraps <see cref="BuddyMemoryPoolFactory"/> to count rents that failed: each one aborts the connection that asked
/// (the documented policy), so the count is the number of connections the heap could not serve.</summary>
/// <param name="inner">The factory Kestrel would otherwise use.</param>
public sealed class CountingMemoryPoolFactory(BuddyMemoryPoolFactory inner) : IMemoryPoolFactory<byte>
{
    private long _failedRents;

    /// <summary>The wrapped factory (its heap and stats).</summary>
    public BuddyMemoryPoolFactory Inner => inner;

    /// <summary>Rents that threw <see cref="HeapExhaustedException"/> so far.</summary>
    public long FailedRents => Interlocked.Read(ref _failedRents);

    /// <summary>Creates a pool that forwards to the inner factory's pool and counts its failed rents.</summary>
    /// <param name="options">Kestrel's pool options.</param>
    /// <returns>The counting pool.</returns>
    public MemoryPool<byte> Create(MemoryPoolOptions? options = null) => new CountingPool(inner.Create(options), this);

    private sealed class CountingPool(MemoryPool<byte> pool, CountingMemoryPoolFactory owner) : MemoryPool<byte>
    {
        public override int MaxBufferSize => pool.MaxBufferSize;

        public override IMemoryOwner<byte> Rent(int minBufferSize = -1)
        {
            try
            {
                return pool.Rent(minBufferSize);
            }
            catch (HeapExhaustedException)
            {
                Interlocked.Increment(ref owner._failedRents);
                throw;
            }
        }

        protected override void Dispose(bool disposing)
        {
            if (disposing)
            {
                pool.Dispose();
            }
        }
    }
}
