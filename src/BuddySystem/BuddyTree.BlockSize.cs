namespace BuddySystem;

public sealed partial class BuddyTree
{
    /// <summary>
    /// The size of the block this tree hands out for <paramref name="size"/> bytes aligned to <paramref name="align"/>:
    /// the largest of the next power of two of the size, the alignment and <see cref="MinBlockSize"/> (the rule of
    /// <see cref="BuddyHeap.BlockSizeOf"/> with this tree's smallest block).
    /// </summary>
    /// <param name="size">Bytes wanted.</param>
    /// <param name="align">Alignment wanted, a power of two.</param>
    /// <returns>The block size in bytes; 0 when no block of 64-bit size could hold the request.</returns>
    /// <exception cref="ArgumentException"><paramref name="align"/> is not a power of two.</exception>
    public ulong BlockSizeFor(ulong size, ulong align)
    {
        if (!BitOperations.IsPow2(align))
        {
            ThrowHelper.ThrowArgument($"Alignment {align} is not a power of two.", nameof(align));
        }

        int order = Orders.OrderFor(size, align, _minShift);
        return order + _minShift >= 64 ? 0 : BlockSize(order);
    }
}
