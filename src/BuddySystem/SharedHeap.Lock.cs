using System.Diagnostics.CodeAnalysis;

namespace BuddySystem;

/// <summary>SharedHeap: the lock, a robust process-shared pthread mutex in the header page.</summary>
public sealed unsafe partial class SharedHeap
{
    /// <summary>glibc's futex word bits of a robust mutex (<c>FUTEX_WAITERS</c>, <c>FUTEX_OWNER_DIED</c>, <c>FUTEX_TID_MASK</c>).</summary>
    private const uint FutexWaiters = 0x80000000;
    private const uint FutexOwnerDied = 0x40000000;
    private const uint FutexTidMask = 0x3FFFFFFF;

    /// <summary>glibc's <c>__owner</c> of a mutex whose dead holder's state nobody made consistent, and of one being recovered.</summary>
    private const int OwnerNotRecoverable = 0x7FFFFFFE;
    private const int OwnerInconsistent = 0x7FFFFFFF;

    /// <summary>Byte offsets of <c>__owner</c> and <c>__kind</c> in glibc's <c>pthread_mutex_t</c> on 64-bit Linux.</summary>
    private const int MutexOwnerOffset = 8;
    private const int MutexKindOffset = 16;

    /// <summary>The mutex ABI a file was made with: 1 = glibc x86-64, 2 = glibc arm64; 0 where there is none.</summary>
    private static readonly ulong s_lockAbi = DetectLockAbi();

    /// <summary>The <c>__kind</c> glibc writes for a robust process-shared mutex, read from one made in this process: a
    /// file whose mutex says otherwise was overwritten, and glibc must not be handed it.</summary>
    private static int s_mutexKind = -1;

    /// <summary>The state of the heap's lock as it is now, read without taking it (a figure for people: it may change at
    /// once).</summary>
    public SharedHeapLockState LockState
    {
        get
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            return DecodeLock(Volatile.Read(ref *(int*)_lock), Volatile.Read(ref *(int*)((byte*)_lock + MutexOwnerOffset)));
        }
    }

    /// <summary>How many times a caller found the lock's holder dead (the kernel released the lock of a process that died
    /// holding it), since the heap was created; <see cref="Recoveries"/> counts those that died inside a change.</summary>
    public long LockOwnerDeaths
    {
        get
        {
            using Scope scope = Enter();
            return _header->LockOwnerDeaths;
        }
    }

    /// <summary>Reads the lock's state from a heap file without opening it as a heap: nothing is mapped, taken, recovered
    /// or written, so a dead holder is reported as such (an <see cref="Open"/> would recover the heap first).</summary>
    /// <param name="path">A file made by <see cref="Create"/>.</param>
    /// <returns>The lock's state.</returns>
    /// <exception cref="FileNotFoundException">The file does not exist.</exception>
    /// <exception cref="InvalidDataException">The file is not a shared heap of this version, or its header is corrupted.</exception>
    /// <exception cref="IOException">The file cannot be read.</exception>
    /// <exception cref="PlatformNotSupportedException">Not on Linux with glibc on x86-64 or arm64.</exception>
    public static SharedHeapLockState PeekLockState(string path)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        RequireLinux();
        string full = Path.GetFullPath(path);
        int fd = OpenFile(full, 0); // O_RDONLY
        try
        {
            _ = ReadGeometry(fd, full);
            int* words = stackalloc int[4];
            if (Libc.Pread(fd, (byte*)words, 16, SharedHeapHeader.LockOffset) != 16)
            {
                throw new IOException($"BuddySystem: cannot read the lock of shared heap '{full}'.");
            }

            return DecodeLock(words[0], words[MutexOwnerOffset / 4]);
        }
        finally
        {
            _ = Libc.Close(fd);
        }
    }

    private static SharedHeapLockState DecodeLock(int word, int owner)
    {
        uint bits = (uint)word;
        int holder = (int)(bits & FutexTidMask);
        if (owner == OwnerNotRecoverable)
        {
            return new SharedHeapLockState(SharedHeapLockStatus.NotRecoverable, 0, 0, Recovering: false);
        }

        if (holder == 0)
        {
            return (bits & FutexOwnerDied) != 0
                ? new SharedHeapLockState(SharedHeapLockStatus.HolderDied, 0, 0, Recovering: false)
                : new SharedHeapLockState(SharedHeapLockStatus.Free, 0, 0, Recovering: false);
        }

        return new SharedHeapLockState(SharedHeapLockStatus.Held, holder, ProcessOfThread(holder), owner == OwnerInconsistent);
    }

    /// <summary>The process (thread group) of thread <paramref name="tid"/>, from <c>/proc/TID/status</c>; 0 when it cannot
    /// be read (another PID namespace, or the thread is gone).</summary>
    private static int ProcessOfThread(int tid)
    {
        try
        {
            foreach (string line in File.ReadLines($"/proc/{tid.ToString(CultureInfo.InvariantCulture)}/status"))
            {
                if (line.StartsWith("Tgid:", StringComparison.Ordinal) &&
                    int.TryParse(line.AsSpan(5).Trim(), NumberStyles.None, CultureInfo.InvariantCulture, out int pid))
                {
                    return pid;
                }
            }
        }
        catch (IOException)
        {
        }
        catch (UnauthorizedAccessException)
        {
        }

        return 0;
    }

    private static ulong DetectLockAbi()
    {
        if (!OperatingSystem.IsLinux() || !NativeLibrary.TryLoad("libc.so.6", out nint libc))
        {
            return 0;
        }

        // glibc alone has gnu_get_libc_version; musl's pthread_mutex_t has another layout.
        bool glibc = NativeLibrary.TryGetExport(libc, "gnu_get_libc_version", out _);
        return !glibc ? 0UL : RuntimeInformation.ProcessArchitecture switch
        {
            Architecture.X64 => 1UL,
            Architecture.Arm64 => 2UL,
            _ => 0UL,
        };
    }

    /// <summary>Writes a robust, process-shared mutex at <paramref name="mutex"/> (zeroed memory of the new file).</summary>
    private static void InitializeLock(byte* mutex, string path)
    {
        byte* attributes = stackalloc byte[Libc.MutexAttributeBytes];
        int error = Libc.MutexAttrInit(attributes);
        if (error == 0)
        {
            error = Libc.MutexAttrSetShared(attributes, Libc.ProcessShared);
            if (error == 0)
            {
                error = Libc.MutexAttrSetRobust(attributes, Libc.MutexRobust);
            }

            if (error == 0)
            {
                error = Libc.MutexInit(mutex, attributes);
            }

            _ = Libc.MutexAttrDestroy(attributes);
        }

        if (error != 0)
        {
            throw new IOException($"BuddySystem: cannot make the lock of shared heap '{path}': {Marshal.GetPInvokeErrorMessage(error)}.");
        }
    }

    /// <summary>The <c>__kind</c> of a robust process-shared mutex, from one made on the stack.</summary>
    private static int MutexKind()
    {
        int kind = Volatile.Read(ref s_mutexKind);
        if (kind < 0)
        {
            byte* probe = stackalloc byte[SharedHeapHeader.LockBytes];
            new Span<byte>(probe, SharedHeapHeader.LockBytes).Clear();
            InitializeLock(probe, "(probe)");
            kind = *(int*)(probe + MutexKindOffset);
            Volatile.Write(ref s_mutexKind, kind);
        }

        return kind;
    }

    /// <summary>Takes the lock; when its holder died, or a change was left unfinished, recovers first.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private Scope Enter() => Enter(out _);

    /// <summary>Takes the lock (a try-lock first: the uncontended case makes no system call and no GC transition; then a
    /// sleeping lock), and recovers when the previous holder died inside a change.</summary>
    /// <param name="recovered">Whether an interrupted change was recovered.</param>
    private Scope Enter(out bool recovered)
    {
        if (_disposed)
        {
            ThrowHelper.ThrowObjectDisposed(this);
        }

        byte* mutex = _lock;
        if (*(int*)(mutex + MutexKindOffset) != _mutexKind)
        {
            ThrowCorrupt($"the lock's kind bytes hold {*(int*)(mutex + MutexKindOffset)}, not a robust process-shared mutex");
        }

        int error = Libc.MutexTryLock(mutex);
        bool ownerDied = false;
        if (error != 0)
        {
            ownerDied = LockSlow(mutex, error);
        }

        recovered = false;
        try
        {
            CrashPoint();
            if (ownerDied)
            {
                _header->LockOwnerDeaths++;
            }

            // The intent record, not the mutex, says whether a change was left unfinished: a holder may die holding the
            // lock outside any change (nothing to do), and a change may be abandoned without a death (an exception from
            // the fault-injection hook), which the next holder must finish all the same.
            if (Volatile.Read(ref _header->IntentOp) != 0)
            {
                recovered = RecoverIfNeeded();
            }

            if (ownerDied)
            {
                _ = Libc.MutexConsistent(mutex);
            }
        }
        catch
        {
            if (ownerDied)
            {
                // Consistent again, so the next caller is not locked out for good; the intent record stays, so it reports
                // the same corruption or finishes the recovery.
                _ = Libc.MutexConsistent(mutex);
            }

            _ = Libc.MutexUnlock(mutex);
            throw;
        }

        return new Scope(this);
    }

    /// <summary>The lock after a try-lock answered <paramref name="error"/>: sleeps on a busy lock; true when the lock was
    /// taken from a holder that died.</summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    private bool LockSlow(byte* mutex, int error)
    {
        if (error == Libc.Busy)
        {
            error = Libc.MutexLock(mutex); // sleeps in futex(2) while another thread or process holds it
        }

        switch (error)
        {
            case 0:
                return false;
            case Libc.OwnerDead:
                return true;
            case Libc.NotRecoverable:
                ThrowCorrupt("its lock is not recoverable (a process unlocked it after its holder died, without recovering the heap)");
                return false;
            case Libc.DeadlockWouldOccur:
                throw new InvalidOperationException($"BuddySystem: this thread already holds the lock of shared heap '{_path}'.");
            default:
                ThrowCorrupt($"its lock failed: {Marshal.GetPInvokeErrorMessage(error)}");
                return false;
        }
    }

    [DoesNotReturn]
    private static void ThrowNoLockAbi() =>
        throw new PlatformNotSupportedException("BuddySystem: SharedHeap needs Linux with glibc on x86-64 or arm64 (its lock is glibc's robust process-shared pthread mutex).");

    /// <summary>The lock, released by <see cref="Dispose"/>.</summary>
    private readonly ref struct Scope(SharedHeap heap)
    {
        public void Dispose()
        {
            try
            {
                CrashPoint();
            }
            finally
            {
                if (Libc.MutexUnlock(heap._lock) != 0)
                {
                    heap.ThrowCorrupt("its lock was not held by this thread at the end of a call (its bytes were overwritten)");
                }
            }
        }
    }
}
