namespace BuddySystem.Cli.Bench.Pools;

/// <summary>One timed run of the <c>pool</c> workload.</summary>
/// <param name="Ops">Rents, each with the return of the buffer it replaced.</param>
/// <param name="ElapsedTicks">Stopwatch ticks from the common start to the last thread's end.</param>
/// <param name="Failed">Rents that threw <see cref="OutOfMemoryException"/> (a full heap).</param>
/// <param name="AllocatedBytes">GC bytes the whole process allocated meanwhile.</param>
/// <param name="LocalFallbacks">Returns meant for the returning thread that the renting thread made itself (a full ring).</param>
internal readonly record struct PoolMeasurement(long Ops, long ElapsedTicks, long Failed, long AllocatedBytes, long LocalFallbacks)
{
    /// <summary>Nanoseconds of the run.</summary>
    public long ElapsedNs => (long)(ElapsedTicks * (1e9 / Stopwatch.Frequency));
}
