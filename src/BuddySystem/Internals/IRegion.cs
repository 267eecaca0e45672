namespace BuddySystem.Internals;

/// <summary>One entry of an engine's region table: its bounds (<see cref="Start"/> inclusive, <see cref="End"/>
/// exclusive) and the native metadata it frees.</summary>
/// <remarks>Implemented by the engines' region structs so that <see cref="Regions"/> serves them all; its methods are
/// generic over the struct, so the JIT specialises each and the calls stay direct.</remarks>
internal interface IRegion
{
    /// <summary>The first address of the region.</summary>
    ulong Start { get; }

    /// <summary>The address one past the region.</summary>
    ulong End { get; }

    /// <summary>Frees the region's native metadata; the region must not be used afterwards.</summary>
    void Free();
}
