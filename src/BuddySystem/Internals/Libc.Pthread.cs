namespace BuddySystem.Internals;

/// <summary>The process-shared robust mutex behind <see cref="SharedHeap"/>'s lock, and the file calls that check who may
/// write a heap file (glibc on Linux).</summary>
/// <remarks>The pthread functions return an error number instead of setting errno. The try-lock and the unlock never block
/// (the unlock at most wakes one sleeper with one <c>futex(2)</c> call), so they skip the GC transition; the blocking
/// lock keeps it, so that a thread asleep on the mutex never holds up a garbage collection.</remarks>
internal static unsafe partial class Libc
{
    /// <summary>Bytes reserved for a <c>pthread_attr_t</c> (56 on x86-64, 64 on arm64).</summary>
    private const int ThreadAttributeBytes = 128;

    /// <summary>The calling thread's stack, from <c>pthread_getattr_np</c> (Linux): its lowest address and its size; false
    /// where it cannot be read.</summary>
    internal static bool TryGetCallingThreadStack(out ulong low, out ulong size)
    {
        low = 0;
        size = 0;
        if (!OperatingSystem.IsLinux())
        {
            return false;
        }

        byte* attributes = stackalloc byte[ThreadAttributeBytes];
        if (GetThreadAttributes(Self(), attributes) != 0)
        {
            return false;
        }

        void* address;
        nuint bytes;
        int error = ThreadAttributeStack(attributes, &address, &bytes);
        _ = DestroyThreadAttributes(attributes);
        if (error != 0 || bytes == 0)
        {
            return false;
        }

        low = (ulong)address;
        size = bytes;
        return true;
    }

    [LibraryImport("libc", EntryPoint = "pthread_self")]
    private static partial nuint Self();

    [LibraryImport("libc", EntryPoint = "pthread_getattr_np")]
    private static partial int GetThreadAttributes(nuint thread, void* attributes);

    [LibraryImport("libc", EntryPoint = "pthread_attr_getstack")]
    private static partial int ThreadAttributeStack(void* attributes, void** address, nuint* size);

    [LibraryImport("libc", EntryPoint = "pthread_attr_destroy")]
    private static partial int DestroyThreadAttributes(void* attributes);

    /// <summary>Bytes reserved for a <c>pthread_mutexattr_t</c> (4 on x86-64 and arm64).</summary>
    internal const int MutexAttributeBytes = 16;

    [LibraryImport("libc", EntryPoint = "pthread_mutexattr_init")]
    internal static partial int MutexAttrInit(void* attributes);

    [LibraryImport("libc", EntryPoint = "pthread_mutexattr_setpshared")]
    internal static partial int MutexAttrSetShared(void* attributes, int shared);

    [LibraryImport("libc", EntryPoint = "pthread_mutexattr_setrobust")]
    internal static partial int MutexAttrSetRobust(void* attributes, int robust);

    [LibraryImport("libc", EntryPoint = "pthread_mutexattr_destroy")]
    internal static partial int MutexAttrDestroy(void* attributes);

    [LibraryImport("libc", EntryPoint = "pthread_mutex_init")]
    internal static partial int MutexInit(void* mutex, void* attributes);

    [LibraryImport("libc", EntryPoint = "pthread_mutex_trylock")]
    [SuppressGCTransition]
    internal static partial int MutexTryLock(void* mutex);

    [LibraryImport("libc", EntryPoint = "pthread_mutex_lock")]
    internal static partial int MutexLock(void* mutex);

    [LibraryImport("libc", EntryPoint = "pthread_mutex_unlock")]
    [SuppressGCTransition]
    internal static partial int MutexUnlock(void* mutex);

    [LibraryImport("libc", EntryPoint = "pthread_mutex_consistent")]
    internal static partial int MutexConsistent(void* mutex);

    [LibraryImport("libc", EntryPoint = "fchmod", SetLastError = true)]
    internal static partial int Fchmod(int fd, uint mode);

    [LibraryImport("libc", EntryPoint = "geteuid")]
    internal static partial uint GetEffectiveUserId();

    /// <summary><c>statx(2)</c>: unlike <c>struct stat</c>, <c>struct statx</c> has one layout on every architecture
    /// (uid at byte 20, mode at byte 28).</summary>
    [LibraryImport("libc", EntryPoint = "statx", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    internal static partial int Statx(int directory, string path, int flags, uint mask, byte* buffer);

    [LibraryImport("libc", EntryPoint = "gnu_get_libc_version")]
    internal static partial nint GnuLibcVersion();

    /// <summary>Owner and permission bits of the open file <paramref name="fd"/>.</summary>
    internal static void OwnerAndMode(int fd, string path, out uint owner, out uint mode)
    {
        byte* buffer = stackalloc byte[256];
        if (Statx(fd, string.Empty, EmptyPath, StatxBasicStats, buffer) != 0)
        {
            throw new IOException($"BuddySystem: cannot stat shared heap '{path}': {Marshal.GetPInvokeErrorMessage(Marshal.GetLastPInvokeError())}.");
        }

        owner = *(uint*)(buffer + 20);
        mode = *(ushort*)(buffer + 28) & 0xFFFu;
    }
}
