namespace BuddySystem.Internals;

/// <summary>
/// The region table every engine keeps: an array sorted by start address, grown copy-on-write, searched by binary search
/// behind a one-entry hint (the region used last).
/// </summary>
/// <remarks>Generic over the region struct (constrained to <see cref="IRegion"/>): the JIT compiles one copy per
/// struct, so nothing here dispatches through the interface or boxes. Regions are passed by <c>ref</c>, not <c>in</c>: the
/// compiler would copy an <c>in</c> struct of unknown readonly-ness before each property call.</remarks>
internal static class Regions
{
    /// <summary>Whether <paramref name="address"/> lies in <paramref name="region"/> (one unsigned comparison).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static bool Contains<T>(ref T region, ulong address)
        where T : struct, IRegion
        => address - region.Start < region.End - region.Start;

    /// <summary>Binary search for the region holding <paramref name="address"/>; -1 when none does.</summary>
    public static int Find<T>(T[] regions, ulong address)
        where T : struct, IRegion
    {
        int low = 0;
        int high = regions.Length - 1;
        while (low <= high)
        {
            int mid = (low + high) >>> 1;
            if (address < regions[mid].Start)
            {
                high = mid - 1;
            }
            else if (address >= regions[mid].End)
            {
                low = mid + 1;
            }
            else
            {
                return mid;
            }
        }

        return -1;
    }

    /// <summary>
    /// The region holding <paramref name="address"/>, which must be inside one: region <paramref name="hint"/> when it
    /// holds it, else found by <see cref="Find"/> and remembered in <paramref name="hint"/>.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static ref T Of<T>(T[] regions, ulong address, ref int hint)
        where T : struct, IRegion
    {
        int last = hint;
        if ((uint)last < (uint)regions.Length && Contains(ref regions[last], address))
        {
            return ref regions[last];
        }

        int index = Find(regions, address);
        hint = index;
        return ref regions[index];
    }

    /// <summary>
    /// A copy of <paramref name="regions"/> with <paramref name="region"/> inserted in start order, at
    /// <paramref name="insertAt"/>; the old array is left as it was, so lock-free readers of it stay valid.
    /// </summary>
    public static T[] Insert<T>(T[] regions, T region, out int insertAt)
        where T : struct, IRegion
    {
        insertAt = 0;
        while (insertAt < regions.Length && regions[insertAt].Start < region.Start)
        {
            insertAt++;
        }

        var grown = new T[regions.Length + 1];
        Array.Copy(regions, grown, insertAt);
        grown[insertAt] = region;
        Array.Copy(regions, insertAt, grown, insertAt + 1, regions.Length - insertAt);
        return grown;
    }

    /// <summary>
    /// The index of the region holding <paramref name="ptr"/>, for a free; throws, naming the address, when it is null or
    /// outside every region.
    /// </summary>
    /// <exception cref="ArgumentNullException"><paramref name="ptr"/> is null.</exception>
    /// <exception cref="ArgumentException"><paramref name="ptr"/> lies outside every region.</exception>
    public static unsafe int FindForFree<T>(T[] regions, void* ptr)
        where T : struct, IRegion
    {
        if (ptr == null)
        {
            throw new ArgumentNullException(nameof(ptr), "Cannot free address 0x0 (null).");
        }

        int index = Find(regions, (ulong)ptr);
        if (index < 0)
        {
            ThrowHelper.ThrowArgument($"Cannot free {ThrowHelper.Hex((ulong)ptr)}: it lies outside every region of this heap.", nameof(ptr));
        }

        return index;
    }

    /// <summary>Frees every region's metadata and empties the table (for an engine's Dispose).</summary>
    public static void FreeAll<T>(ref T[] regions)
        where T : struct, IRegion
    {
        foreach (T region in regions)
        {
            region.Free();
        }

        regions = [];
    }

    /// <summary>Disposes the memory an engine owns (its <c>Create</c> regions) and forgets it.</summary>
    public static void DisposeOwned(List<IDisposable> owned)
    {
        foreach (IDisposable region in owned)
        {
            region.Dispose();
        }

        owned.Clear();
    }
}
