namespace BuddySystem;

/// <summary>
/// A buddy heap in a memory-mapped file, shared by any number of processes and crash-consistent: a process killed with
/// SIGKILL at any instruction inside any call leaves a heap that the next lock holder recovers exactly.
/// </summary>
/// <remarks>
/// <para><b>Layout of the file.</b> A 4 KiB header (geometry, checksum, counters, the intent record), the root area
/// (<see cref="RootOffset"/>, <see cref="RootSize"/> bytes, the program's own directory), one state byte per minimum
/// block (order + 1 where an allocated block starts, 0 elsewhere), the seed's segment tree (one byte per node, as in
/// <see cref="BuddyTree"/>), then the blocks from a page boundary. Offsets count from the start of the file, so no block
/// has offset 0 and a zero slot means "empty"; each process maps the file at its own address (<see cref="Pointer"/>).</para>
/// <para><b>Crash consistency.</b> The state bytes are the heap's real state; the tree is an index over them that can
/// always be rebuilt. Before a call changes anything it writes an intent record into the header (operation, offset,
/// order, slot, the slot's old value) and publishes it with one store of the operation code; it clears the code when it
/// is done. A lock holder that finds the code set knows the previous holder died inside that call and recovers before
/// anything else: an interrupted <see cref="Allocate"/> or <see cref="AllocateInto"/> is rolled back (the block is free
/// again, the slot holds its old value: the call never returned, so nobody holds the offset), an interrupted
/// <see cref="Free"/> or <see cref="FreeFrom"/> is rolled forward (the block is free, the slot is 0); then the one tree
/// path the change touched (the block's node and its ancestors) is recomputed, and the counters are set from their old
/// values in the intent record: recovery costs one walk up the tree, not a rebuild (<see cref="Validate"/> still compares
/// the whole tree with one rebuilt from the state bytes). So every block is free or allocated, never both, never lost; for
/// <see cref="AllocateInto"/> and <see cref="FreeFrom"/> a block is allocated if and only if its slot holds its offset. A
/// program that keeps its blocks only in local variables can still leak the block of an <see cref="Allocate"/> that
/// returned just before the process died. The promise covers the death of processes, not of the machine: nothing is
/// flushed to disk (no <c>msync</c>), so a kernel crash or power loss may lose recent writes.</para>
/// <para><b>Lock.</b> A robust, process-shared pthread mutex in the header page (<c>pthread_mutexattr_setrobust</c>,
/// <c>PTHREAD_PROCESS_SHARED</c>), taken by every call from any thread of any process (.NET threads are pthreads). An
/// uncontended lock and unlock are one atomic instruction each in glibc, with no system call; a waiter sleeps in
/// <c>futex(2)</c>. glibc puts a held robust mutex on the thread's robust list, which the kernel walks when the thread
/// dies: it marks the mutex's holder dead and wakes a waiter, whose lock returns <c>EOWNERDEAD</c>. So a dead holder is
/// told from a slow one by the kernel, at the moment of death, with no timeout and no pid that could be reused. The next
/// holder then recovers if the intent record says a change was left unfinished (a holder can die holding the lock outside
/// any change) and calls <c>pthread_mutex_consistent</c>; a holder killed while recovering leaves the same work to the
/// next. <c>ENOTRECOVERABLE</c> (some process unlocked after a death without that call) is reported as corruption. Earlier
/// versions took a <c>flock(2)</c> on the file per call (two system calls, see docs/benchmarks.md); it is still taken,
/// shared, by <see cref="Open"/> and, exclusive, by <see cref="Create"/> until the header is whole. The mutex layout is
/// glibc's (x86-64 or arm64), recorded in the header: a file made under another ABI is refused. Processes must share a
/// PID namespace (the mutex holds the holder's thread id).</para>
/// <para><b>Who may touch it.</b> <see cref="Create"/> makes the file <c>0600</c> unless
/// <see cref="SharedHeapOptions.FileMode"/> says otherwise; <see cref="Open"/> refuses a file that another user could
/// write (group- or world-writable, or owned by another user than this one or root) unless
/// <see cref="SharedHeapOptions.AllowOtherWriters"/> is set. Whatever another process writes into the file, no call reads
/// or writes outside the mapping: the geometry is checked once at open and kept in this process, and every state byte,
/// tree walk and intent record is bounds-checked; nonsense is reported as a <see cref="HeapCorruptionException"/>.</para>
/// <para><b>Cost.</b> Allocate and Free walk the tree (at most 30 levels) and write one state byte, the tree path and the
/// header; recovery and <see cref="Validate"/> are linear in the number of minimum blocks. Metadata: 3 bytes per
/// minimum block. Linux with glibc only (the lock and the mapping are libc calls).</para>
/// <para><b>Thread safety.</b> Every member is safe from any thread of any process; <see cref="Dispose"/> must not race
/// other calls on the same instance.</para>
/// </remarks>
public sealed unsafe partial class SharedHeap : IDisposable, IHeapStatsSource
{
    private const ulong OpAllocate = 1;
    private const ulong OpAllocateInto = 2;
    private const ulong OpFree = 3;
    private const ulong OpFreeFrom = 4;
    private const ulong MaxAlign = 4096;

    /// <summary>Fault injection for the crash tests (the reliability kit's <c>SharedHeapSlots</c>): when set, called at
    /// every step of a change to the heap (between the intent record's fields, its publication, the state byte, the tree,
    /// the counters, the slot and its clearing, and between the steps of a recovery), so a test can kill the process at
    /// each one; also just after the lock is taken and just before it is released. Null in normal use: one load and a
    /// branch per step.</summary>
    internal static Action? s_crashPoint;

    private readonly string _path;
    private readonly byte* _base;
    private readonly byte* _lock;
    private readonly int _mutexKind;
    private readonly ulong _fileLength;
    private readonly SharedHeapHeader* _header;
    private readonly byte* _states;
    private readonly byte* _nodes;
    private readonly ulong _dataOffset;
    private readonly ulong _units;
    private readonly int _minShift;
    private readonly int _treeOrder;
    private readonly nuint _leafCount;
    private readonly ulong _rootOffset;
    private readonly int _rootSize;
    private volatile bool _disposed;

    private SharedHeap(string path, byte* mapping, in SharedHeapHeader geometry)
    {
        _path = path;
        _base = mapping;
        _lock = mapping + SharedHeapHeader.LockOffset;
        _mutexKind = MutexKind();
        _fileLength = geometry.FileLength;
        _header = (SharedHeapHeader*)mapping;
        _states = mapping + geometry.StatesOffset;
        _nodes = mapping + geometry.TreeOffset;
        _dataOffset = geometry.DataOffset;
        _minShift = (int)geometry.MinShift;
        _units = geometry.Capacity >> _minShift;
        _treeOrder = (int)geometry.TreeOrder;
        _leafCount = (nuint)1 << _treeOrder;
        _rootOffset = geometry.RootOffset;
        _rootSize = (int)geometry.RootSize;
    }

    /// <summary>Creates a new heap file of <paramref name="capacity"/> bytes of blocks, all free, and opens it.</summary>
    /// <param name="path">The file to create; it must not exist.</param>
    /// <param name="capacity">Bytes of blocks, rounded down to a multiple of the minimum block; the file is larger by the
    /// header, the root area and 3 bytes per minimum block.</param>
    /// <param name="options">Minimum block, root size and the file's mode; default <see cref="SharedHeapOptions.Default"/>
    /// (16-byte blocks, a 4 KiB root area, mode <c>0600</c>).</param>
    /// <returns>The heap, ready for use by this and other processes (<see cref="Open"/>).</returns>
    /// <exception cref="IOException">The file exists or cannot be created; the message names it.</exception>
    /// <exception cref="ArgumentException">The options are out of range, the capacity is smaller than one minimum block,
    /// or it needs more than 2^29 minimum blocks.</exception>
    /// <exception cref="PlatformNotSupportedException">Not on Linux with glibc on x86-64 or arm64.</exception>
    public static SharedHeap Create(string path, ulong capacity, SharedHeapOptions? options = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        options ??= SharedHeapOptions.Default;
        RequireLinux();
        ulong minBlock = options.MinBlockSize;
        if (!BitOperations.IsPow2(minBlock) || minBlock < 8 || minBlock > 4096)
        {
            ThrowHelper.ThrowArgument($"The minimum block {minBlock} is not a power of two from 8 to 4096.", nameof(options));
        }

        if (options.RootSize < 8 || options.RootSize > (1 << 20) || options.RootSize % 8 != 0)
        {
            ThrowHelper.ThrowArgument($"The root size {options.RootSize} is not a multiple of 8 from 8 to 1 MiB.", nameof(options));
        }

        int minShift = BitOperations.TrailingZeroCount(minBlock);
        if (capacity < minBlock || Orders.CeilLog2(capacity >> minShift) > BuddyTree.MaxTreeOrder)
        {
            ThrowHelper.ThrowArgument(
                $"A capacity of {capacity} bytes in blocks of {minBlock} must hold from 1 to 2^{BuddyTree.MaxTreeOrder} blocks.", nameof(capacity));
        }

        uint mode = (uint)options.FileMode;
        if ((mode & ~0x1FFu) != 0 || (mode & 0x180) != 0x180)
        {
            ThrowHelper.ThrowArgument($"The file mode {Convert.ToString(mode, 8)} is not permission bits that let the owner read and write.", nameof(options));
        }

        SharedHeapHeader geometry = SharedHeapHeader.Geometry(capacity, minShift, (ulong)options.RootSize, s_lockAbi);
        string full = Path.GetFullPath(path);
        int fd = Libc.Open(full, Libc.ReadWrite | Libc.CreateFlag | Libc.Exclusive | Libc.CloseOnExec, 0); // no access until fchmod
        if (fd < 0)
        {
            int errno = Marshal.GetLastPInvokeError();
            string why = errno == Libc.Exists ? "the file already exists" : Marshal.GetPInvokeErrorMessage(errno);
            throw new IOException($"BuddySystem: cannot create shared heap '{full}': {why}.");
        }

        byte* mapping = null;
        try
        {
            // Held until the magic is written, so that an Open racing with Create waits and then sees a whole heap.
            Libc.FlockOrThrow(fd, Libc.LockExclusive, full);
            if (Libc.Fchmod(fd, mode) != 0)
            {
                throw new IOException($"BuddySystem: cannot set the mode of shared heap '{full}' to {Convert.ToString(mode, 8)}: {Marshal.GetPInvokeErrorMessage(Marshal.GetLastPInvokeError())}.");
            }

            if (Libc.Ftruncate(fd, (long)geometry.FileLength) != 0)
            {
                throw new IOException($"BuddySystem: cannot size shared heap '{full}' to {geometry.FileLength} bytes: {Marshal.GetPInvokeErrorMessage(Marshal.GetLastPInvokeError())}.");
            }

            mapping = Map(fd, geometry.FileLength, full);
            var heap = new SharedHeap(full, mapping, geometry);
            SharedHeapHeader written = geometry;
            written.Magic = 0;
            *heap._header = written;
            InitializeLock(heap._lock, full);
            heap.RebuildIndex(heap._nodes, out _, out _);
            Volatile.Write(ref heap._header->Magic, SharedHeapHeader.MagicValue);
            Libc.FlockOrThrow(fd, Libc.LockUnlock, full);
            _ = Libc.Close(fd); // the mapping stays
            return heap;
        }
        catch
        {
            if (mapping != null)
            {
                _ = Libc.Munmap(mapping, (nuint)geometry.FileLength);
            }

            _ = Libc.Close(fd);
            File.Delete(full);
            throw;
        }
    }

    /// <summary>Opens an existing heap file; any number of processes may have it open at once. A heap left in the middle
    /// of an operation by a process that died is recovered first.</summary>
    /// <param name="path">A file made by <see cref="Create"/>.</param>
    /// <param name="options">Only <see cref="SharedHeapOptions.AllowOtherWriters"/> is read; default: refuse a file another
    /// user can write.</param>
    /// <returns>The heap.</returns>
    /// <exception cref="FileNotFoundException">The file does not exist.</exception>
    /// <exception cref="InvalidDataException">The file is not a shared heap, is of another version or lock ABI, is
    /// truncated, or its header is corrupted; the message names the file, and nothing was written to it.</exception>
    /// <exception cref="UnauthorizedAccessException">Another user can write the file (group- or world-writable, or owned by
    /// another user than this one or root) and <see cref="SharedHeapOptions.AllowOtherWriters"/> is not set.</exception>
    /// <exception cref="HeapCorruptionException">The recovery of an interrupted change found the heap corrupted.</exception>
    /// <exception cref="IOException">The file cannot be opened for reading and writing.</exception>
    /// <exception cref="PlatformNotSupportedException">Not on Linux with glibc on x86-64 or arm64.</exception>
    public static SharedHeap Open(string path, SharedHeapOptions? options = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        options ??= SharedHeapOptions.Default;
        RequireLinux();
        string full = Path.GetFullPath(path);
        int fd = OpenFile(full, Libc.ReadWrite);
        byte* mapping = null;
        ulong length = 0;
        SharedHeap? heap = null;
        try
        {
            if (!options.AllowOtherWriters)
            {
                RefuseOtherWriters(fd, full);
            }

            // Shared: waits for a Create still writing the header (it holds the flock exclusive), not for other opens.
            Libc.FlockOrThrow(fd, Libc.LockShared, full);
            SharedHeapHeader geometry = ReadGeometry(fd, full);
            length = geometry.FileLength;
            mapping = Map(fd, length, full);
            Libc.FlockOrThrow(fd, Libc.LockUnlock, full);
            _ = Libc.Close(fd);
            fd = -1;
            heap = new SharedHeap(full, mapping, geometry);
            using (heap.Enter(out bool recovered))
            {
                heap.RecoveredAtOpen = recovered;
            }

            return heap;
        }
        catch
        {
            if (mapping != null)
            {
                _ = Libc.Munmap(mapping, (nuint)length);
            }

            if (fd >= 0)
            {
                _ = Libc.Close(fd); // also drops the flock
            }

            throw;
        }
    }

    /// <summary>The full path of the heap file.</summary>
    public string FilePath => _path;

    /// <summary>Bytes of blocks the heap manages (the capacity given to <see cref="Create"/>, rounded down to a multiple
    /// of <see cref="MinBlockSize"/>).</summary>
    public ulong Capacity => _units << _minShift;

    /// <summary>The smallest block: every block is a power-of-two multiple of it.</summary>
    public ulong MinBlockSize => 1UL << _minShift;

    /// <summary>The offset of the first block byte; every block offset lies in [<see cref="DataOffset"/>,
    /// <see cref="DataOffset"/> + <see cref="Capacity"/>).</summary>
    public ulong DataOffset => _dataOffset;

    /// <summary>The offset of the root area: <see cref="RootSize"/> bytes, zero when the heap was created, for the
    /// program's own directory (slots for <see cref="AllocateInto"/>, counters, …). The heap never writes there except
    /// into slots passed to <see cref="AllocateInto"/> and <see cref="FreeFrom"/>.</summary>
    public ulong RootOffset => _rootOffset;

    /// <summary>Bytes of the root area, fixed at <see cref="Create"/> (<see cref="SharedHeapOptions.RootSize"/>).</summary>
    public int RootSize => _rootSize;

    /// <summary>How many times a lock holder found an interrupted operation and recovered the heap, since it was created.</summary>
    public long Recoveries
    {
        get
        {
            using Scope scope = Enter();
            return _header->Recoveries;
        }
    }

    /// <summary>Whether <see cref="Open"/> found the heap left inside a call by a process that died, and recovered it.
    /// Always <see langword="false"/> for a heap from <see cref="Create"/>.</summary>
    public bool RecoveredAtOpen { get; private set; }

    /// <summary>This process's address of <paramref name="offset"/> in the mapping; valid until <see cref="Dispose"/>.</summary>
    /// <param name="offset">An offset in [0, file length]: a block, a slot, or the root area.</param>
    /// <returns>The address.</returns>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="offset"/> lies beyond the end of the file.</exception>
    public byte* Pointer(ulong offset)
    {
        if (offset > _fileLength)
        {
            throw new ArgumentOutOfRangeException(nameof(offset), offset, $"Offset {Describe(offset)} lies beyond the end of shared heap '{_path}' ({_fileLength} bytes).");
        }

        ObjectDisposedException.ThrowIf(_disposed, this);
        return _base + offset;
    }

    /// <summary>Allocates a block of max(next power of two of <paramref name="size"/>, <paramref name="align"/>,
    /// <see cref="MinBlockSize"/>) bytes, aligned to its size (up to 4096) in both offset and pointer.</summary>
    /// <param name="size">Bytes wanted; 0 gets a unique block of <see cref="MinBlockSize"/>.</param>
    /// <param name="align">A power of two up to 4096 (the page size: each process maps the file at its own page-aligned
    /// address); default 16.</param>
    /// <returns>The block's offset, never 0.</returns>
    /// <exception cref="ArgumentException"><paramref name="align"/> is not a power of two or exceeds 4096.</exception>
    /// <exception cref="HeapExhaustedException">No free block is large enough; the heap is unchanged.</exception>
    public ulong Allocate(ulong size, ulong align = 16)
    {
        if (!TryAllocate(size, align, out ulong offset))
        {
            HeapStats stats = Stats;
            throw new HeapExhaustedException(size, align, stats.FreeBytes, stats.LargestFreeBlock);
        }

        return offset;
    }

    /// <summary>Allocates as <see cref="Allocate"/> does, returning <see langword="false"/> when it cannot.</summary>
    /// <param name="size">Bytes wanted.</param>
    /// <param name="align">A power of two up to 4096.</param>
    /// <param name="offset">The block's offset; 0 on failure.</param>
    /// <returns><see langword="false"/> when no free block is large enough; the heap is then unchanged.</returns>
    /// <exception cref="ArgumentException"><paramref name="align"/> is not a power of two or exceeds 4096.</exception>
    public bool TryAllocate(ulong size, ulong align, out ulong offset)
    {
        int order = OrderOf(size, align);
        using Scope scope = Enter();
        return AllocateLocked(order, 0, out offset);
    }

    /// <summary>Allocates as <see cref="Allocate"/> does and stores the offset at <paramref name="slot"/>, as one
    /// crash-atomic step: after any crash the block is allocated if and only if the slot holds its offset.</summary>
    /// <param name="size">Bytes wanted.</param>
    /// <param name="align">A power of two up to 4096.</param>
    /// <param name="slot">The offset of 8 bytes, 8-aligned, inside the root area or inside an allocated block. Its old
    /// value is overwritten (a block it named is not freed).</param>
    /// <returns>The block's offset, also stored at <paramref name="slot"/>.</returns>
    /// <exception cref="ArgumentException"><paramref name="align"/> is invalid, or <paramref name="slot"/> is not 8-aligned
    /// or lies neither in the root area nor in an allocated block; the message names it and the heap is unchanged.</exception>
    /// <exception cref="HeapExhaustedException">No free block is large enough; the heap and the slot are unchanged.</exception>
    public ulong AllocateInto(ulong size, ulong align, ulong slot)
    {
        int order = OrderOf(size, align);
        bool done;
        ulong offset;
        using (Scope scope = Enter())
        {
            CheckSlot(slot);
            done = AllocateLocked(order, slot, out offset);
        }

        if (!done)
        {
            HeapStats stats = Stats;
            throw new HeapExhaustedException(size, align, stats.FreeBytes, stats.LargestFreeBlock);
        }

        return offset;
    }

    /// <summary>Frees the block at <paramref name="offset"/>; no size is needed. Merges with free buddies.</summary>
    /// <param name="offset">An offset returned by an allocation and not freed since.</param>
    /// <exception cref="ArgumentException"><paramref name="offset"/> lies outside the blocks, inside a block, or starts no
    /// allocated block (never allocated, or already freed); the message names it and the heap is unchanged.</exception>
    public void Free(ulong offset)
    {
        using Scope scope = Enter();
        int order = FindLiveBlock(offset, "free");
        Release(offset, order, 0, OpFree);
    }

    /// <summary>Frees the block whose offset is stored at <paramref name="slot"/> and zeroes the slot, as one crash-atomic
    /// step.</summary>
    /// <param name="slot">A slot as for <see cref="AllocateInto"/>, holding the offset of an allocated block that does not
    /// contain the slot itself.</param>
    /// <exception cref="ArgumentException">The slot is invalid, holds 0, or holds an offset that <see cref="Free"/> would
    /// reject; the message names the slot and the offset, and the heap and the slot are unchanged.</exception>
    public void FreeFrom(ulong slot)
    {
        using Scope scope = Enter();
        CheckSlot(slot);
        ulong offset = Volatile.Read(ref *(ulong*)(_base + slot));
        if (offset == 0)
        {
            ThrowHelper.ThrowArgument($"Slot {Describe(slot)} of shared heap '{_path}' holds 0: there is no block to free.", nameof(slot));
        }

        int order = FindLiveBlock(offset, $"free from slot {Describe(slot)}");
        if (slot - offset < (1UL << (order + _minShift)))
        {
            ThrowHelper.ThrowArgument($"Slot {Describe(slot)} lies inside the block {Describe(offset)} it names, in shared heap '{_path}'.", nameof(slot));
        }

        Release(offset, order, slot, OpFreeFrom);
    }

    /// <summary>The block size of the allocated block at <paramref name="offset"/>.</summary>
    /// <param name="offset">An offset returned by an allocation and not freed since.</param>
    /// <returns>Its size in bytes.</returns>
    /// <exception cref="ArgumentException">As for <see cref="Free"/>; nothing changes.</exception>
    public ulong SizeOf(ulong offset)
    {
        using Scope scope = Enter();
        return 1UL << (FindLiveBlock(offset, "size") + _minShift);
    }

    /// <summary>The size of the block an allocation of <paramref name="size"/> bytes aligned to <paramref name="align"/>
    /// gets: max(next power of two of the size, the alignment, <see cref="MinBlockSize"/>). Reads nothing of the heap.</summary>
    /// <param name="size">Bytes wanted.</param>
    /// <param name="align">A power of two up to 4096.</param>
    /// <returns>The block size in bytes (it may exceed <see cref="Capacity"/>: such a request fails).</returns>
    /// <exception cref="ArgumentException"><paramref name="align"/> is not a power of two or exceeds 4096.</exception>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="size"/> is above 2^63: no block size fits in 64 bits.</exception>
    public ulong BlockSizeFor(ulong size, ulong align = 16)
    {
        int shift = OrderOf(size, align) + _minShift;
        ArgumentOutOfRangeException.ThrowIfGreaterThan(shift, 63, nameof(size));
        return 1UL << shift;
    }

    /// <summary>Unmaps the heap; other processes keep using it. Must not race other calls on this instance.</summary>
    public void Dispose()
    {
        if (_disposed)
        {
            return;
        }

        _disposed = true;
        _ = Libc.Munmap(_base, (nuint)_fileLength);
    }

    /// <summary>The order of a request, checking the alignment.</summary>
    private int OrderOf(ulong size, ulong align)
    {
        if (!BitOperations.IsPow2(align) || align > MaxAlign)
        {
            ThrowHelper.ThrowArgument($"Alignment {align} is not a power of two up to {MaxAlign}.", nameof(align));
        }

        return Orders.OrderFor(size, align, _minShift);
    }

    /// <summary>Allocates under the lock; stores the offset at <paramref name="slot"/> when it is not 0.</summary>
    private bool AllocateLocked(int order, ulong slot, out ulong offset)
    {
        SharedHeapHeader* header = _header;
        if (!TreeNodes.HasFreeBlock(ref *_nodes, _treeOrder, order))
        {
            header->FailedAllocations++;
            offset = 0;
            return false;
        }

        // Best fit, as BuddyTree's default placement.
        nuint index = TreeNodes.Descend<TreeNodes.BestFit>(ref *_nodes, _treeOrder, order);
        ulong unit = (ulong)(index - (_leafCount >> order)) << order;
        if (unit + (1UL << order) > _units || _nodes[index] != order + 1)
        {
            // The walk stays inside the tree whatever its bytes say; a node past the blocks, or one that is not wholly
            // free, means another process wrote nonsense into the tree.
            ThrowCorrupt($"its tree offers node {index} for a block of order {order}, which is not a free block inside the heap");
        }

        offset = _dataOffset + (unit << _minShift);
        header->IntentOffset = offset;
        header->IntentOrder = (ulong)order;
        header->IntentSlot = slot;
        CrashPoint();
        header->IntentOldSlot = slot == 0 ? 0 : *(ulong*)(_base + slot);
        header->IntentOldAllocatedBytes = header->AllocatedBytes;
        header->IntentOldLiveBlocks = header->LiveBlocks;
        CrashPoint();
        Interlocked.Exchange(ref header->IntentOp, slot == 0 ? OpAllocate : OpAllocateInto); // published before any change
        CrashPoint();

        _states[unit] = (byte)(order + 1);
        CrashPoint();
        _nodes[index] = 0;
        TreeNodes.UpdateAncestors(ref *_nodes, index, order);
        CrashPoint();
        header->AllocatedBytes += 1UL << (order + _minShift);
        header->LiveBlocks++;
        header->Allocations++;
        CrashPoint();
        if (slot != 0)
        {
            Volatile.Write(ref *(ulong*)(_base + slot), offset);
            CrashPoint();
        }

        Volatile.Write(ref header->IntentOp, 0); // every store above is visible before the record is cleared
        CrashPoint();
        return true;
    }

    /// <summary>Frees the checked block at <paramref name="offset"/> under the lock, zeroing <paramref name="slot"/> when not 0.</summary>
    private void Release(ulong offset, int order, ulong slot, ulong op)
    {
        SharedHeapHeader* header = _header;
        header->IntentOffset = offset;
        header->IntentOrder = (ulong)order;
        header->IntentSlot = slot;
        header->IntentOldSlot = slot == 0 ? 0 : offset;
        header->IntentOldAllocatedBytes = header->AllocatedBytes;
        header->IntentOldLiveBlocks = header->LiveBlocks;
        CrashPoint();
        Interlocked.Exchange(ref header->IntentOp, op);
        CrashPoint();

        if (slot != 0)
        {
            Volatile.Write(ref *(ulong*)(_base + slot), 0UL);
            CrashPoint();
        }

        ulong unit = (offset - _dataOffset) >> _minShift;
        _states[unit] = 0;
        CrashPoint();
        nuint index = (_leafCount >> order) + (nuint)(unit >> order);
        _nodes[index] = (byte)(order + 1);
        TreeNodes.UpdateAncestors(ref *_nodes, index, order);
        CrashPoint();
        header->AllocatedBytes -= 1UL << (order + _minShift);
        header->LiveBlocks--;
        CrashPoint();
        Volatile.Write(ref header->IntentOp, 0);
        CrashPoint();
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void CrashPoint() => s_crashPoint?.Invoke();

    /// <summary>The order of the allocated block starting at <paramref name="offset"/>; throws naming it when there is none.</summary>
    private int FindLiveBlock(ulong offset, string what)
    {
        ulong end = _dataOffset + Capacity;
        if (offset < _dataOffset || offset >= end)
        {
            ThrowNotLive(offset, what, $"it lies outside the blocks [{Describe(_dataOffset)}, {Describe(end)})");
        }

        if (((offset - _dataOffset) & (MinBlockSize - 1)) != 0)
        {
            ThrowNotLive(offset, what, $"it is not a multiple of the minimum block {MinBlockSize} from the first block");
        }

        ulong unit = (offset - _dataOffset) >> _minShift;
        int state = _states[unit];
        if (state > _treeOrder + 1 || (state != 0 && ((unit & ((1UL << (state - 1)) - 1)) != 0 || unit + (1UL << (state - 1)) > _units)))
        {
            ThrowCorrupt($"the state byte of offset {Describe(offset)} holds {state}, not an order that fits there");
        }

        if (state == 0)
        {
            ulong start = EnclosingBlock(offset, out int order);
            ThrowNotLive(offset, what, start == 0
                ? "no block starts there (never allocated, or already freed)"
                : $"it lies inside the allocated block of {1UL << (order + _minShift)} bytes at {Describe(start)}");
        }

        return state - 1;
    }

    /// <summary>The offset of the allocated block containing <paramref name="offset"/> (a data offset), or 0; reads at most
    /// one state byte per order.</summary>
    private ulong EnclosingBlock(ulong offset, out int order)
    {
        ulong unit = (offset - _dataOffset) >> _minShift;
        for (order = 0; order <= _treeOrder; order++)
        {
            ulong start = unit & ~((1UL << order) - 1);
            if (_states[start] == order + 1)
            {
                return _dataOffset + (start << _minShift);
            }
        }

        return 0;
    }

    /// <summary>Throws unless <paramref name="slot"/> is 8 bytes, 8-aligned, in the root area or in an allocated block.</summary>
    private void CheckSlot(ulong slot)
    {
        if ((slot & 7) != 0)
        {
            ThrowHelper.ThrowArgument($"Slot {Describe(slot)} of shared heap '{_path}' is not 8-aligned.", nameof(slot));
        }

        if (slot >= _rootOffset && slot + 8 <= _rootOffset + (ulong)_rootSize)
        {
            return;
        }

        if (slot < _dataOffset || slot >= _dataOffset + Capacity || EnclosingBlock(slot, out _) == 0)
        {
            ThrowHelper.ThrowArgument($"Slot {Describe(slot)} of shared heap '{_path}' lies neither in the root area [{Describe(_rootOffset)}, {Describe(_rootOffset + (ulong)_rootSize)}) nor in an allocated block.", nameof(slot));
        }
    }

    [System.Diagnostics.CodeAnalysis.DoesNotReturn]
    private void ThrowNotLive(ulong offset, string what, string why) =>
        throw new ArgumentException($"Cannot {what} offset {Describe(offset)} of shared heap '{_path}': {why}.", "offset");

    private static string Describe(ulong offset) => offset.ToString(CultureInfo.InvariantCulture) + " (" + ThrowHelper.Hex(offset) + ")";

    private static void RequireLinux()
    {
        if (!OperatingSystem.IsLinux())
        {
            throw new PlatformNotSupportedException("BuddySystem: SharedHeap needs Linux (its lock and mapping are libc calls).");
        }

        if (s_lockAbi == 0)
        {
            ThrowNoLockAbi();
        }
    }

    /// <summary><c>open(2)</c> of an existing heap file with <paramref name="flags"/>, or an exception naming it.</summary>
    private static int OpenFile(string full, int flags)
    {
        int fd = Libc.Open(full, flags | Libc.CloseOnExec, 0);
        if (fd < 0)
        {
            int errno = Marshal.GetLastPInvokeError();
            if (errno == Libc.NoEntry)
            {
                throw new FileNotFoundException($"BuddySystem: shared heap '{full}' does not exist.", full);
            }

            throw new IOException($"BuddySystem: cannot open shared heap '{full}': {Marshal.GetPInvokeErrorMessage(errno)}.");
        }

        return fd;
    }

    /// <summary>Throws when a user other than this one (or root) could write the file: its bytes steer this process.</summary>
    private static void RefuseOtherWriters(int fd, string full)
    {
        Libc.OwnerAndMode(fd, full, out uint owner, out uint mode);
        uint self = Libc.GetEffectiveUserId();
        if ((mode & 0x12) != 0 || (owner != self && owner != 0))
        {
            throw new UnauthorizedAccessException(
                $"BuddySystem: shared heap '{full}' can be written by other users (mode {Convert.ToString(mode, 8)}, owner uid {owner}, this process uid {self}); " +
                "set SharedHeapOptions.AllowOtherWriters to open it anyway.");
        }
    }

    private static byte* Map(int fd, ulong length, string path)
    {
        void* mapping = Libc.Mmap(null, (nuint)length, Libc.ProtReadWrite, Libc.MapShared, fd, 0);
        if (mapping == (void*)-1)
        {
            throw new IOException($"BuddySystem: cannot map shared heap '{path}' ({length} bytes): {Marshal.GetPInvokeErrorMessage(Marshal.GetLastPInvokeError())}.");
        }

        return (byte*)mapping;
    }
}
