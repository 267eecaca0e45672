namespace BuddySystem.Diagnostics;

/// <summary>
/// Linux's two external-fragmentation measures, computed from a buddyinfo row (free blocks per order) as
/// <c>mm/vmstat.c</c> does for <c>/sys/kernel/debug/extfrag/unusable_index</c> and <c>extfrag_index</c>.
/// </summary>
/// <remarks>
/// <para>With n_k free blocks of order k: free = Σ n_k·2^k (in order-0 blocks), blocks = Σ n_k, and for a request of
/// order j, suitable = Σ_{k≥j} n_k·2^(k−j) (how many order-j requests the free blocks could serve).</para>
/// <para>Linux reports both in thousandths with integer division (so its figure can differ from 1000 × these by one);
/// these methods return the exact ratio as a <see cref="double"/>. Sums are taken in <see cref="double"/>, exact while
/// the free memory is below 2^53 order-0 blocks.</para>
/// <para>Thread safety: pure functions of their arguments.</para>
/// </remarks>
public static class Fragmentation
{
    /// <summary>
    /// The unusable free index U(j) = (free − suitable·2^j) / free: the share of free memory that cannot serve a request
    /// of order <paramref name="order"/> because it lies in smaller blocks. 0 = every free byte is usable, 1 = none is.
    /// </summary>
    /// <param name="freeBlocksByOrder">Free blocks per order (order 0 first): a <c>/proc/buddyinfo</c> row.</param>
    /// <param name="order">The request's order j, from 0; orders beyond the row have no free blocks.</param>
    /// <returns>U(j) in [0, 1]; 1 when there is no free memory at all (as Linux does).</returns>
    /// <exception cref="ArgumentNullException"><paramref name="freeBlocksByOrder"/> is null.</exception>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="order"/> is negative or above 63, or a count is negative.</exception>
    public static double UnusableFreeIndex(IReadOnlyList<long> freeBlocksByOrder, int order)
    {
        Sums sums = Sum(freeBlocksByOrder, order);
        if (sums.Free == 0)
        {
            return 1;
        }

        return (sums.Free - (sums.Suitable * Math.Pow(2, order))) / sums.Free;
    }

    /// <summary>
    /// The fragmentation index F(j) = 1 − (1 + free/2^j) / blocks: when a request of order <paramref name="order"/>
    /// cannot be served, values near 0 say the failure is for lack of memory, values near 1 that it is for
    /// fragmentation (plenty of memory, all in small blocks).
    /// </summary>
    /// <param name="freeBlocksByOrder">Free blocks per order (order 0 first): a <c>/proc/buddyinfo</c> row.</param>
    /// <param name="order">The request's order j, from 0.</param>
    /// <returns>F(j) below 1 (it goes negative when the free memory is less than one order-j block); −1 when a block of order j or larger is free (the request would succeed);
    /// 0 when there are no free blocks.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="freeBlocksByOrder"/> is null.</exception>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="order"/> is negative or above 63, or a count is negative.</exception>
    public static double FragmentationIndex(IReadOnlyList<long> freeBlocksByOrder, int order)
    {
        Sums sums = Sum(freeBlocksByOrder, order);
        if (sums.Blocks == 0)
        {
            return 0;
        }

        if (sums.Suitable != 0)
        {
            return -1;
        }

        return 1 - ((1 + (sums.Free / Math.Pow(2, order))) / sums.Blocks);
    }

    private static Sums Sum(IReadOnlyList<long> freeBlocksByOrder, int order)
    {
        ArgumentNullException.ThrowIfNull(freeBlocksByOrder);
        ArgumentOutOfRangeException.ThrowIfNegative(order);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(order, 63);
        double free = 0;
        double blocks = 0;
        double suitable = 0;
        for (int k = 0; k < freeBlocksByOrder.Count; k++)
        {
            long count = freeBlocksByOrder[k];
            ArgumentOutOfRangeException.ThrowIfNegative(count, nameof(freeBlocksByOrder));
            free += count * Math.Pow(2, k);
            blocks += count;
            if (k >= order)
            {
                suitable += count * Math.Pow(2, k - order);
            }
        }

        return new Sums(free, blocks, suitable);
    }

    private readonly record struct Sums(double Free, double Blocks, double Suitable);
}
