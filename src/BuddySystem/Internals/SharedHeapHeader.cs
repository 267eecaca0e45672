namespace BuddySystem.Internals;

/// <summary>
/// The first bytes of a <see cref="SharedHeap"/> file. The geometry (up to <see cref="GeometryHash"/>) is written once by
/// Create and checked by every Open; the rest changes under the heap's lock. The intent record is the heap's redo/undo
/// log of one operation: its fields are written first, <see cref="IntentOp"/> last, and <see cref="IntentOp"/> is cleared
/// when the operation is complete, so a non-zero <see cref="IntentOp"/> seen by the next lock holder means its holder died
/// inside that operation. The lock itself, a robust process-shared pthread mutex, lives at <see cref="LockOffset"/> of the
/// header page, outside this struct, on a cache line of its own.
/// </summary>
/// <remarks>Version 2 (the mutex, <see cref="LockAbi"/>, <see cref="LockOwnerDeaths"/>, and the counters' old values in
/// the intent record, so recovery repairs one tree path instead of rebuilding the tree) replaced version 1, whose lock
/// was a <c>flock(2)</c> on the file: the two cannot share a file, so each refuses the other's.</remarks>
[StructLayout(LayoutKind.Sequential)]
internal struct SharedHeapHeader
{
    internal const ulong MagicValue = 0x4D48534459444442; // the bytes "BDDYDSHM" at the start of the file
    internal const uint CurrentVersion = 2;
    internal const int Size = 4096;
    internal const int HashedBytes = 96;

    /// <summary>Where the mutex starts in the header page.</summary>
    internal const int LockOffset = 256;

    /// <summary>Bytes reserved for the mutex (a <c>pthread_mutex_t</c> is 40 bytes on x86-64, 48 on arm64).</summary>
    internal const int LockBytes = 64;

    internal ulong Magic;
    internal uint Version;
    internal uint HeaderSize;
    internal ulong FileLength;
    internal ulong Capacity;
    internal ulong MinShift;
    internal ulong TreeOrder;
    internal ulong RootOffset;
    internal ulong RootSize;
    internal ulong StatesOffset;
    internal ulong TreeOffset;
    internal ulong DataOffset;
    internal ulong LockAbi;
    internal ulong GeometryHash;

    internal ulong IntentOp;
    internal ulong IntentOffset;
    internal ulong IntentOrder;
    internal ulong IntentSlot;
    internal ulong IntentOldSlot;
    internal ulong IntentOldAllocatedBytes;
    internal long IntentOldLiveBlocks;
    internal ulong AllocatedBytes;
    internal long LiveBlocks;
    internal long Allocations;
    internal long FailedAllocations;
    internal long Recoveries;
    internal long LockOwnerDeaths;

    /// <summary>The whole layout of a heap of <paramref name="capacity"/> bytes: header, root area, one state byte per
    /// minimum block, the tree (two bytes per leaf), then the blocks from a page boundary.</summary>
    internal static SharedHeapHeader Geometry(ulong capacity, int minShift, ulong rootSize, ulong lockAbi)
    {
        ulong units = capacity >> minShift;
        int treeOrder = Orders.CeilLog2(units);
        var header = new SharedHeapHeader
        {
            Magic = MagicValue,
            Version = CurrentVersion,
            HeaderSize = Size,
            Capacity = units << minShift,
            MinShift = (ulong)minShift,
            TreeOrder = (ulong)treeOrder,
            RootOffset = Size,
            RootSize = rootSize,
            LockAbi = lockAbi,
        };
        header.StatesOffset = AlignUp(header.RootOffset + rootSize, 64);
        header.TreeOffset = AlignUp(header.StatesOffset + units, 64);
        header.DataOffset = AlignUp(header.TreeOffset + (2UL << treeOrder), 4096);
        header.FileLength = header.DataOffset + header.Capacity;
        header.GeometryHash = header.ComputeHash();
        return header;
    }

    /// <summary>FNV-1a over the geometry fields.</summary>
    internal readonly unsafe ulong ComputeHash()
    {
        ulong hash = 0xCBF29CE484222325;
        fixed (SharedHeapHeader* self = &this)
        {
            byte* bytes = (byte*)self;
            for (int i = 0; i < HashedBytes; i++)
            {
                hash = (hash ^ bytes[i]) * 0x100000001B3;
            }
        }

        return hash;
    }

    /// <summary>True when every geometry field equals <paramref name="other"/>'s.</summary>
    internal readonly bool SameGeometry(in SharedHeapHeader other) =>
        Magic == other.Magic && Version == other.Version && HeaderSize == other.HeaderSize && FileLength == other.FileLength &&
        Capacity == other.Capacity && MinShift == other.MinShift && TreeOrder == other.TreeOrder &&
        RootOffset == other.RootOffset && RootSize == other.RootSize && StatesOffset == other.StatesOffset &&
        TreeOffset == other.TreeOffset && DataOffset == other.DataOffset && LockAbi == other.LockAbi && GeometryHash == other.GeometryHash;

    private static ulong AlignUp(ulong value, ulong align) => (value + align - 1) & ~(align - 1);
}
