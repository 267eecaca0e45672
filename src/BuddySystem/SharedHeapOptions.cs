namespace BuddySystem;

/// <summary>The geometry and access of a <see cref="SharedHeap"/> file: <see cref="SharedHeap.Create"/> reads every
/// property but <see cref="AllowOtherWriters"/>; <see cref="SharedHeap.Open"/> reads only <see cref="AllowOtherWriters"/>.</summary>
public sealed record SharedHeapOptions
{
    /// <summary>The defaults: 16-byte minimum blocks, a 4 KiB root area, mode <c>0600</c>, and files other users can write
    /// refused.</summary>
    public static SharedHeapOptions Default { get; } = new();

    /// <summary>The smallest block, a power of two from 8 to 4096; default 16. Metadata costs 3 bytes per minimum block
    /// (one state byte, two tree bytes), so 16-byte blocks cost 3/16 of the capacity.</summary>
    public ulong MinBlockSize { get; init; } = 16;

    /// <summary>Bytes of the root area (<see cref="SharedHeap.RootOffset"/>), the program's own directory of slots; a
    /// multiple of 8 from 8 to 1 MiB; default 4096. Zero when the heap is created.</summary>
    public int RootSize { get; init; } = 4096;

    /// <summary>The permission bits of the new file, set exactly (the umask does not apply); the owner must be able to read
    /// and write. Default <c>0600</c> (<see cref="UnixFileMode.UserRead"/> | <see cref="UnixFileMode.UserWrite"/>): only
    /// the creating user's processes share the heap. For a group, <c>0660</c> and the group set on the file or its
    /// directory; those processes then open it with <see cref="AllowOtherWriters"/>.</summary>
    public UnixFileMode FileMode { get; init; } = UnixFileMode.UserRead | UnixFileMode.UserWrite;

    /// <summary>Whether <see cref="SharedHeap.Open"/> opens a file that a user other than this one (or root) could write:
    /// group- or world-writable, or owned by another user. Default <see langword="false"/>: such a file is refused with an
    /// <see cref="UnauthorizedAccessException"/>, since whoever writes the file's bytes steers every process that maps
    /// it (the heap bounds-checks them, but the blocks' contents are the program's to trust).</summary>
    public bool AllowOtherWriters { get; init; }
}
