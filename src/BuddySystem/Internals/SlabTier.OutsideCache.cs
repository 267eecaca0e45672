namespace BuddySystem.Internals;

internal sealed unsafe partial class SlabTier
{
    /// <summary>
    /// The bit an object's state byte carries while the object waits in a cache outside the tier: the per-thread caches of
    /// class objects that <c>libbuddymalloc.so</c>'s C loader keeps. To the tier such an object stays live (its slab cannot
    /// empty, <see cref="Validate"/> and the snapshot count it), but a free of it fails the compare-exchange from its class
    /// state and is named a double free, so misuse stays exact while the object sits in C.
    /// </summary>
    internal const byte OutsideCachedBit = 0x80;

    /// <summary>Whether state byte <paramref name="state"/> is a live object handed to a caller (not 0, not waiting in an
    /// outside cache).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static bool IsHandedOut(byte state) => state != 0 && state < OutsideCachedBit;

    /// <summary>Number of size classes, whose state bytes are 1 to this (the C loader's bound for a live object).</summary>
    internal static int ClassCount => SizeClasses.Count;

    /// <summary>
    /// Moves a live object of class <paramref name="index"/> into an outside cache (its state gains
    /// <see cref="OutsideCachedBit"/>, with a compare-exchange), or back out of one; throws when its state is not the one
    /// expected, naming the address: the object was freed meanwhile, or the cache's list was overwritten.
    /// </summary>
    /// <exception cref="InvalidOperationException">The object's state is not the expected one; nothing changed.</exception>
    internal void MoveOutsideCache(void* ptr, int index, bool into)
    {
        byte live = (byte)(index + 1);
        byte cached = (byte)(live | OutsideCachedBit);
        byte* state = StateSlotOf((ulong)ptr);
        byte expected = into ? live : cached;
        if (state == null || Interlocked.CompareExchange(ref *state, into ? cached : live, expected) != expected)
        {
            ThrowHelper.ThrowInvalidOperation($"the object {ThrowHelper.Hex((ulong)ptr)} of {SizeClasses.SizeOf(index)} bytes is not {(into ? "allocated" : "in the thread's cache")} (its cache's list was overwritten after free?)");
        }
    }

    /// <summary>Whether the object at <paramref name="ptr"/> waits in an outside cache as an object of class
    /// <paramref name="index"/>.</summary>
    internal bool IsOutsideCached(void* ptr, int index)
    {
        byte* state = StateSlotOf((ulong)ptr);
        return state != null && *state == (byte)(index + 1 | OutsideCachedBit);
    }

    /// <summary>
    /// The metadata of the region that starts at <paramref name="start"/>, for a reader outside managed code (the C loader):
    /// its state bytes, indexed by (address − start) / 16, and its page map, indexed by (address − start) / 1 KiB (0, a
    /// slab's descriptor, or an odd tagged length). False when no region starts there.
    /// </summary>
    internal bool TryGetRegionMetadata(ulong start, out byte* states, out nint* pages)
    {
        foreach (Region region in Volatile.Read(ref _regions))
        {
            if (region.Start == start && (start & ((1UL << PageShift) - 1)) == 0)
            {
                states = region.States;
                pages = region.Pages;
                return true;
            }
        }

        states = null;
        pages = null;
        return false;
    }

    /// <summary>The state byte of the granule at <paramref name="address"/>, or null outside every region. Reads the
    /// copy-on-write region table without the lock (regions go only at <see cref="Dispose"/>).</summary>
    private byte* StateSlotOf(ulong address)
    {
        ThrowIfDisposed();
        Region[] regions = Volatile.Read(ref _regions);
        int index = Regions.Find(regions, address);
        return index < 0 || (address & 15) != 0 ? null : regions[index].StateBase + (address >> GranuleShift);
    }
}
