namespace BuddySystem;

public sealed partial class BuddyHeap
{
    /// <summary>
    /// The size of the block a buddy heap hands out for <paramref name="layout"/>: the largest of the next power of two of
    /// the size, the alignment and <see cref="MinBlockSize"/>. The block starts at a multiple of this size.
    /// </summary>
    /// <param name="layout">The request.</param>
    /// <returns>The block size in bytes, a power of two of at least <see cref="MinBlockSize"/>.</returns>
    /// <exception cref="ArgumentOutOfRangeException">No block can be that large (more than half the address space).</exception>
    /// <remarks>This is the rule of every pointer engine over <see cref="BuddyHeap"/> (<see cref="LockedHeap"/>,
    /// <see cref="ConcurrentHeap"/>); a hardened heap adds <see cref="RequestOverhead"/> to the size first
    /// (<see cref="BlockSizeFor"/>).</remarks>
    public static nuint BlockSizeOf(Layout layout)
    {
        int order = Orders.OrderFor(layout.Size, layout.Align, MinShift);
        if (order > MaxOrder || order + MinShift >= IntPtr.Size * 8)
        {
            throw new ArgumentOutOfRangeException(nameof(layout), layout.Size, $"No buddy block can hold {layout.Size} bytes aligned to {layout.Align}.");
        }

        return MinBlockSize << order;
    }

    /// <summary>Bytes this heap adds to every request before choosing its block: 16 when hardened with overflow checks
    /// (canary and footer), otherwise 0.</summary>
    public int RequestOverhead => _hardening is { Options.CheckOverflow: true } ? HardeningOverhead : 0;

    /// <summary>The size of the block this heap hands out for <paramref name="layout"/>: <see cref="BlockSizeOf"/> of the
    /// request grown by <see cref="RequestOverhead"/>.</summary>
    /// <param name="layout">The request.</param>
    /// <returns>The block size in bytes.</returns>
    /// <exception cref="ArgumentOutOfRangeException">No block can be that large.</exception>
    public nuint BlockSizeFor(Layout layout)
    {
        int overhead = RequestOverhead;
        if (overhead == 0)
        {
            return BlockSizeOf(layout);
        }

        if (layout.Size > nuint.MaxValue - (nuint)overhead - (layout.Align - 1))
        {
            throw new ArgumentOutOfRangeException(nameof(layout), layout.Size, $"No buddy block can hold {layout.Size} bytes aligned to {layout.Align}.");
        }

        return BlockSizeOf(new Layout(layout.Size + (nuint)overhead, layout.Align));
    }
}
