namespace BuddySystem.Internals;

/// <summary>
/// A count that many threads change at once without sharing a cache line: one cell per processor (by
/// <see cref="Thread.GetCurrentProcessorId"/>), each on its own line; the count is the sum of the cells. A decrement may land
/// on another cell than its increment, so a cell can be negative; only the sum means anything.
/// </summary>
/// <remarks>Every change is an interlocked (fully fenced) add, so a thread that changes a cell and then reads a flag, and a
/// thread that sets the flag and then sums the cells, cannot both miss each other's write.</remarks>
internal sealed class StripedCounter
{
    // 16 longs = 128 bytes between cells: two lines, so the adjacent-line prefetcher does not couple neighbours.
    private const int Stride = 16;
    private readonly long[] _cells;
    private readonly int _mask;

    /// <summary>Creates a counter at zero with one cell per processor (rounded up to a power of two).</summary>
    public StripedCounter()
    {
        int cells = (int)System.Numerics.BitOperations.RoundUpToPowerOf2((uint)Math.Clamp(Environment.ProcessorCount, 1, 64));
        _mask = cells - 1;
        _cells = new long[(cells + 1) * Stride];
    }

    /// <summary>The cell this thread should change now.</summary>
    public int CurrentCell => Thread.GetCurrentProcessorId() & _mask;

    /// <summary>Adds <paramref name="delta"/> to cell <paramref name="cell"/> (fully fenced).</summary>
    public void Add(int cell, long delta) => Interlocked.Add(ref _cells[(cell + 1) * Stride], delta);

    /// <summary>The count: exact when no thread is changing it, an estimate while threads are.</summary>
    public long Sum()
    {
        long sum = 0;
        for (int cell = 0; cell <= _mask; cell++)
        {
            sum += Volatile.Read(ref _cells[(cell + 1) * Stride]);
        }

        return sum;
    }
}
