namespace BuddySystem.Cli.Bench.Pools;

/// <summary>Binds a struct pool adapter to the generic workload, so each pool gets its own copy of the loop.</summary>
/// <typeparam name="T">The adapter.</typeparam>
/// <param name="id">The row's name.</param>
/// <param name="description">One line for help and docs.</param>
/// <param name="create">A fresh adapter for the given number of renting threads.</param>
internal sealed class BenchPoolEntry<T>(string id, string description, Func<int, T> create) : BenchPoolEntry(id, description)
    where T : struct, IBenchPool
{
    public override PoolMeasurement RunHere(int threads, int opsPerThread)
    {
        T pool = create(threads);
        try
        {
            return PoolWorkload.Run(pool, threads, opsPerThread, warmUpOpsPerThread: Math.Min(opsPerThread, 200_000));
        }
        finally
        {
            pool.Dispose();
        }
    }
}
