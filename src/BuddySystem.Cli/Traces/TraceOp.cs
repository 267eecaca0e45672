namespace BuddySystem.Cli.Traces;

/// <summary>One line of a trace: an allocate, free or reallocate of the block named <see cref="Id"/>.</summary>
/// <param name="Kind">Which operation.</param>
/// <param name="Id">The block's id: unique among live blocks.</param>
/// <param name="Size">Bytes for an allocate, the new size for a reallocate, 0 for a free.</param>
/// <param name="Align">The alignment of an allocate (a power of two), 0 otherwise.</param>
/// <param name="Line">The 1-based line number in the trace, for error messages.</param>
internal readonly record struct TraceOp(TraceOpKind Kind, ulong Id, ulong Size, ulong Align, long Line);
