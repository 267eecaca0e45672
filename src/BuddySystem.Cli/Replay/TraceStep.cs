using BuddySystem.Cli.Traces;

namespace BuddySystem.Cli.Replay;

/// <summary>One trace operation with its id mapped to a dense slot, so replay indexes arrays instead of hashing ids.</summary>
/// <param name="Kind">Allocate, free or reallocate.</param>
/// <param name="Slot">The block's slot: slots are reused once freed, so there are as many as the peak of live blocks.</param>
/// <param name="Id">The trace's id (the fill pattern derives from it).</param>
/// <param name="Size">Bytes of an allocate, the new size of a reallocate.</param>
/// <param name="Align">The block's alignment (for a free or reallocate: the one it was allocated with).</param>
/// <param name="Line">The line in the trace, for errors.</param>
internal readonly record struct TraceStep(TraceOpKind Kind, int Slot, ulong Id, nuint Size, nuint Align, long Line);
