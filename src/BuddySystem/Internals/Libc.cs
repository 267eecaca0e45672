namespace BuddySystem.Internals;

/// <summary>The few libc calls behind <see cref="SharedHeap"/>: open, ftruncate, mmap, munmap, flock, close (Linux); the
/// mmap and munmap of libbuddymalloc's reserve too; the madvise with which a heap's <c>Trim</c> returns the pages of free
/// blocks (<see cref="BuddyHeap"/>'s purge), and the mincore with which the tests count the pages still resident.</summary>
/// <remarks>The file is opened with <c>open(2)</c> rather than a <see cref="FileStream"/>: on Unix .NET emulates
/// <see cref="FileShare"/> with an advisory <c>flock</c> of its own on the same descriptor, which would fight with the
/// heap's lock. The mapping is <c>mmap(2)</c> rather than <c>MemoryMappedFile</c>: the heap holds one pointer for its
/// whole life, and the view accessor's acquire/release around it would only add a layer.</remarks>
internal static unsafe partial class Libc
{
    // The numbers of both files' calls as glibc's headers define them on x86-64 and arm64, in one table: the flags, then
    // the errno values in order (the file calls set errno, the pthread calls return the same numbers).
    internal const int ReadWrite = 0x2;          // O_RDWR
    internal const int CreateFlag = 0x40;        // O_CREAT
    internal const int Exclusive = 0x80;         // O_EXCL
    internal const int CloseOnExec = 0x80000;    // O_CLOEXEC
    internal const int EmptyPath = 0x1000;       // AT_EMPTY_PATH
    internal const uint StatxBasicStats = 0x7FF; // STATX_BASIC_STATS
    internal const int LockShared = 1;           // LOCK_SH
    internal const int LockExclusive = 2;        // LOCK_EX
    internal const int LockUnlock = 8;           // LOCK_UN
    internal const int ProtReadWrite = 0x3;      // PROT_READ | PROT_WRITE
    internal const int MapShared = 0x1;          // MAP_SHARED
    internal const int MapPrivate = 0x2;         // MAP_PRIVATE
    internal const int MapAnonymous = 0x20;      // MAP_ANONYMOUS
    internal const int MapNoReserve = 0x4000;    // MAP_NORESERVE
    internal const int AdviseDontNeed = 4;       // MADV_DONTNEED
    internal const int ProcessShared = 1;        // PTHREAD_PROCESS_SHARED
    internal const int MutexRobust = 1;          // PTHREAD_MUTEX_ROBUST
    internal const int NoEntry = 2;              // ENOENT
    internal const int Interrupted = 4;          // EINTR
    internal const int Busy = 16;                // EBUSY
    internal const int Exists = 17;              // EEXIST
    internal const int DeadlockWouldOccur = 35;  // EDEADLK
    internal const int OwnerDead = 130;          // EOWNERDEAD
    internal const int NotRecoverable = 131;     // ENOTRECOVERABLE

    [LibraryImport("libc", EntryPoint = "open", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    internal static partial int Open(string path, int flags, int mode);

    [LibraryImport("libc", EntryPoint = "close", SetLastError = true)]
    internal static partial int Close(int fd);

    [LibraryImport("libc", EntryPoint = "ftruncate", SetLastError = true)]
    internal static partial int Ftruncate(int fd, long length);

    [LibraryImport("libc", EntryPoint = "pread", SetLastError = true)]
    internal static partial nint Pread(int fd, byte* buffer, nuint count, long offset);

    [LibraryImport("libc", EntryPoint = "lseek", SetLastError = true)]
    internal static partial long Lseek(int fd, long offset, int whence);

    [LibraryImport("libc", EntryPoint = "mmap", SetLastError = true)]
    internal static partial void* Mmap(void* address, nuint length, int protection, int flags, int fd, long offset);

    [LibraryImport("libc", EntryPoint = "munmap", SetLastError = true)]
    internal static partial int Munmap(void* address, nuint length);

    /// <summary><c>madvise(2)</c>: <paramref name="address"/> page-aligned, the range inside one mapping of this process.</summary>
    [LibraryImport("libc", EntryPoint = "madvise", SetLastError = true)]
    internal static partial int Madvise(void* address, nuint length, int advice);

    /// <summary><c>mincore(2)</c>: one byte per page of [address, address + length) into <paramref name="vector"/>, bit 0
    /// set when the page is resident; <paramref name="address"/> page-aligned.</summary>
    [LibraryImport("libc", EntryPoint = "mincore", SetLastError = true)]
    internal static partial int Mincore(void* address, nuint length, byte* vector);

    [LibraryImport("libc", EntryPoint = "flock", SetLastError = true)]
    internal static partial int Flock(int fd, int operation);

    /// <summary><c>flock(fd, operation)</c>, retried on EINTR.</summary>
    internal static void FlockOrThrow(int fd, int operation, string path)
    {
        while (Flock(fd, operation) != 0)
        {
            int errno = Marshal.GetLastPInvokeError();
            if (errno != Interrupted)
            {
                throw new IOException($"BuddySystem: flock on shared heap '{path}' failed: {Marshal.GetPInvokeErrorMessage(errno)}.");
            }
        }
    }
}
