namespace BuddySystem.Cli.Bench;

/// <summary>One row of the bench: the median of the runs of one workload case on one allocator.</summary>
/// <param name="Workload">W1..W6, or P (programs).</param>
/// <param name="Param">The size (W2), n (W4), threads (W5) or the program (P); "" otherwise.</param>
/// <param name="Allocator">The allocator's stable id.</param>
/// <param name="NsPerOp">Median nanoseconds per operation (P: per run of the program, its wall time).</param>
/// <param name="Ops">Operations per run.</param>
/// <param name="Failed">Failed allocations in the median run (W6: rounds ended by a failure; P: runs that exited non-zero).</param>
/// <param name="OpsPerSec">W5 and pool: total operations per second of the median run.</param>
/// <param name="Efficiency">W6: mean live requested bytes at the first failure / heap size.</param>
/// <param name="MaxRssBytes">P: the median of the runs' peak resident set of the program.</param>
/// <param name="CpuNs">P: the median of the runs' user + system nanoseconds (the program and the children it waited for).</param>
/// <param name="GcBytesPerOp">pool: GC bytes the process allocated per operation in the median run.</param>
/// <param name="PeakRssBytes">pool: the peak resident set of the median run's process.</param>
/// <param name="SameOutput">P: every run exited 0 with the same standard output as the first run on glibc.</param>
internal sealed record BenchResult(string Workload, string Param, string Allocator, double NsPerOp, long Ops, long Failed, double? OpsPerSec = null, double? Efficiency = null, long? MaxRssBytes = null, bool? SameOutput = null, double? CpuNs = null, double? GcBytesPerOp = null, long? PeakRssBytes = null);
