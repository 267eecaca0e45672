namespace BuddySystem.Testing;

/// <summary>What a <see cref="SharedHeapKillRun"/> survived.</summary>
/// <param name="Kills">Worker processes killed with SIGKILL.</param>
/// <param name="InjectedKills">Of those, the ones that killed themselves at a step inside a change to the heap.</param>
/// <param name="Rounds">Rounds: each started the workers, killed every one, then opened, validated and checked the heap.</param>
/// <param name="BlocksChecked">Allocated blocks found named by exactly one slot, summed over the rounds.</param>
/// <param name="Recoveries">Interrupted calls recovered, by the parent's Open or by a surviving worker (the heap's counter).</param>
/// <param name="RecoveryTimes">The parent's <see cref="SharedHeap.Open"/> of each round that found an interrupted call and recovered it.</param>
/// <param name="OpenTimes">The parent's <see cref="SharedHeap.Open"/> of the other rounds (nothing to recover).</param>
/// <param name="Elapsed">The whole run.</param>
/// <param name="LockOwnerDeaths">Times a caller took the heap's lock from a holder that had died holding it (the
/// heap's counter).</param>
internal sealed record SharedHeapKillResult(
    long Kills,
    long InjectedKills,
    long Rounds,
    long BlocksChecked,
    long Recoveries,
    IReadOnlyList<TimeSpan> RecoveryTimes,
    IReadOnlyList<TimeSpan> OpenTimes,
    TimeSpan Elapsed,
    long LockOwnerDeaths);
