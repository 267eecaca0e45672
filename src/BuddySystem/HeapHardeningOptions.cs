namespace BuddySystem;

/// <summary>
/// Opt-in checks of a hardened <see cref="BuddyHeap"/> (and a <see cref="LockedHeap"/> over one), set through
/// <see cref="BuddyHeapOptions.Hardening"/>: freed memory is poisoned and checked when handed out again (write-after-free
/// detection), every block carries a canary and a footer after the requested bytes, checked when it is freed (overflow
/// detection), and live blocks are reported on dispose (leak detection), optionally with the stack that allocated them.
/// Ideas from glibc's <c>MALLOC_PERTURB_</c>, mimalloc's secure mode and Scudo; the code is our own.
/// </summary>
/// <remarks>
/// <para><b>Cost.</b> Off by default. When on, every request takes 16 bytes more (an 8-byte canary and an 8-byte footer
/// holding the requested size), so a request of exactly a power of two gets a block twice as large; every free writes the
/// whole block and every allocation reads it (time linear in the block size instead of O(1)); a free merge re-poisons 16
/// bytes per merged buddy. Capturing stacks adds a <see cref="System.Diagnostics.StackTrace"/> and a dictionary entry per
/// allocation: tens of microseconds each, for debugging only. The measured cost, by block size: docs/reliability.md.</para>
/// <para><b>What is not caught.</b> A write after free into the first 16 bytes of a free block (they hold the free-list
/// links; <see cref="BuddyHeap.Validate"/> catches most such writes), a read after free, an overflow that skips past the
/// canary and footer into another block, and an overflow into the slack that a later free does not reach.</para>
/// <para><b>Detection.</b> Evidence of corruption goes to <see cref="CorruptionHandler"/> with a message that starts with
/// <see cref="HeapCorruptionException.Prefix"/> and names the block. The default handler calls
/// <see cref="Environment.FailFast(string)"/>: the process dies at once (SIGABRT on Linux) before the corruption spreads.
/// A handler that returns lets the operation go on as if the check had passed; one that throws aborts the operation.</para>
/// <para>Not available with <see cref="ConcurrentHeap"/>, whose per-thread caches bypass the checks.</para>
/// </remarks>
public sealed record HeapHardeningOptions
{
    /// <summary>The default hardening: poison, canaries and leak reports on; stacks off; fail fast on corruption.</summary>
    public static HeapHardeningOptions Default { get; } = new();

    /// <summary>The byte every free block is filled with, and checked for when the block is handed out again.</summary>
    /// <remarks>Default 0xDB (mimalloc's freed-memory byte is 0xDF, glibc's perturb byte is chosen by the user).</remarks>
    public byte PoisonByte { get; init; } = 0xDB;

    /// <summary>Whether freed memory is poisoned and checked when handed out again. Default on.</summary>
    public bool CheckWriteAfterFree { get; init; } = true;

    /// <summary>Whether each block carries a canary and a footer after the requested bytes, checked on free. Default on.</summary>
    public bool CheckOverflow { get; init; } = true;

    /// <summary>Whether <see cref="BuddyHeap.Dispose"/> reports the blocks still live through <see cref="LeakHandler"/>. Default on.</summary>
    public bool ReportLeaksOnDispose { get; init; } = true;

    /// <summary>Whether each allocation records its stack, shown in the leak report. Default off (costly).</summary>
    public bool CaptureAllocationStacks { get; init; }

    /// <summary>Receives the message of detected corruption; default <see cref="Environment.FailFast(string)"/>.</summary>
    public Action<string> CorruptionHandler { get; init; } = FailFast;

    /// <summary>Receives the leak report of a heap disposed with live blocks; default writes it to standard error.</summary>
    public Action<string> LeakHandler { get; init; } = WriteToStandardError;

    /// <summary>The default corruption handler: ends the process at once with the message.</summary>
    /// <param name="message">What is corrupted, and where; starts with <see cref="HeapCorruptionException.Prefix"/>.</param>
    public static void FailFast(string message) => Environment.FailFast(message);

    private static void WriteToStandardError(string report) => Console.Error.WriteLine(report);
}
