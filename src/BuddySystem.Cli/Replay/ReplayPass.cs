namespace BuddySystem.Cli.Replay;

/// <summary>The outcome of one pass of a trace on one allocator.</summary>
/// <param name="Ops">Operations replayed.</param>
/// <param name="ElapsedTicks">Stopwatch ticks (timed passes; a verified pass times its fills and checks too).</param>
/// <param name="Failed">Allocations and reallocations that returned null.</param>
/// <param name="PeakUserBytes">Peak of live requested bytes the allocator actually held (verified pass).</param>
/// <param name="PeakAllocatedBytes">Peak of live block sizes (verified pass); 0 when the allocator cannot tell.</param>
/// <param name="FootprintBytes">Arenas: highest byte ever used − region start (verified pass); 0 otherwise.</param>
/// <param name="Verified">Every block kept its fill pattern until freed or reallocated.</param>
internal readonly record struct ReplayPass(long Ops, long ElapsedTicks, long Failed, ulong PeakUserBytes, ulong PeakAllocatedBytes, ulong FootprintBytes, bool Verified)
{
    /// <summary>Nanoseconds per operation.</summary>
    public double NsPerOp => Ops == 0 ? double.NaN : ElapsedTicks * (1e9 / Stopwatch.Frequency) / Ops;
}
