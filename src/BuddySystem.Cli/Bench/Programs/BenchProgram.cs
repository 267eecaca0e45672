namespace BuddySystem.Cli.Bench.Programs;

/// <summary>One program of workload P: a real program and its arguments, run in a work folder its inputs were written to.</summary>
/// <param name="Name">The stable name used by <c>--program</c>, tables and JSON (e.g. <c>python3</c>).</param>
/// <param name="Description">What it does, for the table's caption and docs.</param>
/// <param name="Argv">The program (looked up on PATH) and its arguments.</param>
/// <param name="Environment">Variables set for this program on every allocator (e.g. <c>PYTHONMALLOC=malloc</c>).</param>
/// <param name="Unavailable">Why it cannot run here (its executable is missing), or null.</param>
internal sealed record BenchProgram(string Name, string Description, IReadOnlyList<string> Argv, IReadOnlyDictionary<string, string> Environment, string? Unavailable);
