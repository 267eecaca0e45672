using System.Runtime.InteropServices;

namespace BuddySystem.Malloc;

/// <summary>
/// The loader's start-up arena (native/loader.c, <c>struct boot_arena</c>, the same layout): the small blocks it handed
/// out before the runtime started. The runtime starts at the first request the arena cannot serve; from then on the
/// process heap accounts for the arena's blocks (<see cref="ProcessHeap.Report"/>) and serves every new request itself.
/// </summary>
/// <remarks>
/// The arena is 1 MiB of address space outside the heap's reserved range, cut into blocks of 16 B to 32 KiB, each
/// aligned to its size (the engine's block sizes, so <c>malloc_usable_size</c> gives what the heap would). One state
/// byte per 16-byte granule keeps frees exact: a double free or an interior free of an arena block is reported as the
/// heap reports it. Freed arena blocks are reused only before the runtime starts. A process that never outgrows the
/// arena (<c>/bin/true</c>, <c>sh -c true</c>) never starts the runtime: that start is most of its cost (docs/benchmarks.md).
/// </remarks>
[StructLayout(LayoutKind.Sequential)]
internal struct BootArena
{
    /// <summary>First byte of the arena (0: the loader could not map it).</summary>
    public ulong Start;

    /// <summary>Bytes of address space in the arena.</summary>
    public ulong Size;

    /// <summary>Arena blocks allocated and not yet freed.</summary>
    public long LiveBlocks;

    /// <summary>Bytes of those blocks (whole block sizes).</summary>
    public long LiveBytes;

    /// <summary>Blocks the arena handed out in all.</summary>
    public long Allocations;

    /// <summary>The arena's state bytes, one per 16-byte granule.</summary>
    public ulong States;
}
