using BuddySystem.Diagnostics;

namespace BuddySystem.Cli.Maps;

/// <summary>How the bytes of one pixel of the memory map divide between block states, when its blocks are too small to draw.</summary>
internal readonly record struct CellShares(ulong Allocated, ulong Cached, ulong Free, ulong Unknown)
{
    public CellShares Add(BlockState state, ulong bytes) => state switch
    {
        BlockState.Allocated => this with { Allocated = Allocated + bytes },
        BlockState.Cached => this with { Cached = Cached + bytes },
        BlockState.Free => this with { Free = Free + bytes },
        _ => this with { Unknown = Unknown + bytes },
    };

    /// <summary>Bottom to top: allocated, cached, free, unknown; states with no bytes are left out.</summary>
    public IEnumerable<(BlockState State, ulong Bytes)> InDrawingOrder()
    {
        if (Allocated != 0)
        {
            yield return (BlockState.Allocated, Allocated);
        }

        if (Cached != 0)
        {
            yield return (BlockState.Cached, Cached);
        }

        if (Free != 0)
        {
            yield return (BlockState.Free, Free);
        }

        if (Unknown != 0)
        {
            yield return (BlockState.Unknown, Unknown);
        }
    }
}
