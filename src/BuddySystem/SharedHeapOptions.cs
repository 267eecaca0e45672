namespace BuddySystem;

/// <summary>The geometry of a new <see cref="SharedHeap"/> file, fixed at <see cref="SharedHeap.Create"/>.</summary>
public sealed record SharedHeapOptions
{
    /// <summary>The defaults: 16-byte minimum blocks and a 4 KiB root area.</summary>
    public static SharedHeapOptions Default { get; } = new();

    /// <summary>The smallest block, a power of two from 8 to 4096; default 16. Metadata costs 3 bytes per minimum block
    /// (one state byte, two tree bytes), so 16-byte blocks cost 3/16 of the capacity.</summary>
    public ulong MinBlockSize { get; init; } = 16;

    /// <summary>Bytes of the root area (<see cref="SharedHeap.RootOffset"/>), the program's own directory of slots; a
    /// multiple of 8 from 8 to 1 MiB; default 4096. Zero when the heap is created.</summary>
    public int RootSize { get; init; } = 4096;
}
