namespace BuddySystem.Cli.Bench;

/// <summary>One timed run of one workload case on one allocator.</summary>
/// <param name="Ops">Operations timed (pairs for W1/W2, frees for W4, ops for W3/W5/W6).</param>
/// <param name="ElapsedTicks">Stopwatch ticks of the timed part.</param>
/// <param name="Failed">Allocations that returned null (for W6: rounds ended by a failed allocation).</param>
/// <param name="Efficiency">W6 only: mean live requested bytes at the first failure / heap size.</param>
/// <param name="GcBytes">pool only: GC bytes the process allocated during the timed part.</param>
/// <param name="PeakRssBytes">pool only: the peak resident set of the process the run had to itself.</param>
internal readonly record struct Measurement(long Ops, long ElapsedTicks, long Failed, double Efficiency = double.NaN, long? GcBytes = null, long? PeakRssBytes = null)
{
    /// <summary>Nanoseconds per operation.</summary>
    public double NsPerOp => Ops == 0 ? double.NaN : ElapsedTicks * (1e9 / Stopwatch.Frequency) / Ops;
}
