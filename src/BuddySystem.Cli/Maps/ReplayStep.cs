namespace BuddySystem.Cli.Maps;

/// <summary>
/// What one replayed operation did: its text as in a trace (<c>a 12 48 16</c>), the block it returned or freed (an
/// offset from the heap's base), and whether it failed (null from the heap) or was skipped (its id was not live).
/// </summary>
internal readonly record struct ReplayStep(string Operation, ulong? Offset, ulong RequestedBytes, bool Failed, bool Skipped);
