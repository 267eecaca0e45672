namespace BuddySystem;

/// <summary>SharedHeap: checking a file's header, recovering an interrupted operation, rebuilding the tree, stats and Validate.</summary>
public sealed unsafe partial class SharedHeap
{
    /// <summary>A snapshot of the heap's accounting, read under the lock. <see cref="HeapStats.UserBytes"/> equals
    /// <see cref="HeapStats.AllocatedBytes"/> (the heap stores no requested sizes); the counts of allocations and failures
    /// are shared by all processes and may miss the one call a killed process was inside.</summary>
    public HeapStats Stats
    {
        get
        {
            using Scope scope = Enter();
            var byOrder = new long[_treeOrder + 1];
            TreeNodes.CountFreeBlocks(ref *_nodes, 1, _treeOrder, byOrder);
            SharedHeapHeader* header = _header;
            return new HeapStats
            {
                UserBytes = header->AllocatedBytes,
                AllocatedBytes = header->AllocatedBytes,
                TotalBytes = Capacity,
                FreeBytes = Capacity - header->AllocatedBytes,
                CachedBytes = 0,
                MetadataBytes = _dataOffset - (_rootOffset + (ulong)_rootSize) + SharedHeapHeader.Size,
                LargestFreeBlock = _nodes[1] == 0 ? 0 : 1UL << (_nodes[1] - 1 + _minShift),
                LiveBlocks = header->LiveBlocks,
                Allocations = header->Allocations,
                FailedAllocations = header->FailedAllocations,
                MinBlockSize = MinBlockSize,
                FreeBlocksByOrder = byOrder,
            };
        }
    }

    /// <summary>Checks every invariant under the lock: the header's checksum, that allocated blocks are aligned, inside
    /// the heap and do not overlap, that the tree equals the one rebuilt from the block states, and the counters.</summary>
    /// <exception cref="HeapCorruptionException">An invariant is broken; the message names the file and the invariant.</exception>
    public void Validate()
    {
        using Scope scope = Enter();
        SharedHeapHeader* header = _header;
        if (header->ComputeHash() != header->GeometryHash || header->Magic != SharedHeapHeader.MagicValue)
        {
            ThrowCorrupt("the header's geometry no longer matches its checksum");
        }

        ulong unit = 0;
        while (unit < _units)
        {
            int state = _states[unit];
            if (state == 0)
            {
                unit++;
                continue;
            }

            int order = state - 1;
            ulong blocks = 1UL << order;
            if (order > _treeOrder || (unit & (blocks - 1)) != 0 || unit + blocks > _units)
            {
                ThrowCorrupt($"the state byte of offset {Describe(_dataOffset + (unit << _minShift))} names order {order}, which is not aligned there or runs past the end");
            }

            for (ulong inner = unit + 1; inner < unit + blocks; inner++)
            {
                if (_states[inner] != 0)
                {
                    ThrowCorrupt($"the block at {Describe(_dataOffset + (inner << _minShift))} lies inside the allocated block at {Describe(_dataOffset + (unit << _minShift))}");
                }
            }

            unit += blocks;
        }

        byte[] expected = new byte[2 * _leafCount];
        fixed (byte* nodes = expected)
        {
            RebuildIndex(nodes, out ulong allocated, out long live);
            for (nuint i = 1; i < 2 * _leafCount; i++)
            {
                if (nodes[i] != _nodes[i])
                {
                    ThrowCorrupt($"tree node {i} holds {_nodes[i]} where the block states give {nodes[i]}");
                }
            }

            if (allocated != header->AllocatedBytes || live != header->LiveBlocks)
            {
                ThrowCorrupt($"the counters say {header->LiveBlocks} blocks and {header->AllocatedBytes} bytes allocated, the block states {live} and {allocated}");
            }
        }
    }

    /// <summary>The blocks of the heap in offset order, free ones as the buddy system's maximal free blocks; read under the lock.</summary>
    /// <returns>(offset, order, allocated) for each block.</returns>
    internal List<(ulong Offset, int Order, bool Allocated)> Blocks()
    {
        using Scope scope = Enter();
        var blocks = new List<(ulong, int, bool)>();
        CollectBlocks(1, _treeOrder, blocks);
        return blocks;
    }

    /// <summary>How many orders the heap has: 0 (the minimum block) to the tree's top.</summary>
    internal int OrderCount => _treeOrder + 1;

    /// <summary>Reads and checks the header of an open file before anything is mapped or written.</summary>
    private static SharedHeapHeader ReadGeometry(int fd, string path)
    {
        long length = Libc.Lseek(fd, 0, 2); // SEEK_END
        SharedHeapHeader header = default;
        int wanted = sizeof(SharedHeapHeader);
        nint read = length >= 8 ? Libc.Pread(fd, (byte*)&header, (nuint)wanted, 0) : 0;
        if (read < 0)
        {
            throw new IOException($"BuddySystem: cannot read shared heap '{path}': {Marshal.GetPInvokeErrorMessage(Marshal.GetLastPInvokeError())}.");
        }

        if (read >= 8 && header.Magic != SharedHeapHeader.MagicValue)
        {
            throw new InvalidDataException($"BuddySystem: '{path}' is not a shared heap (no BuddySystem heap magic at its start).");
        }

        if (length < SharedHeapHeader.Size || read < wanted)
        {
            throw new InvalidDataException($"BuddySystem: shared heap '{path}' is truncated: {length} bytes, shorter than its {SharedHeapHeader.Size}-byte header.");
        }

        if (header.Version != SharedHeapHeader.CurrentVersion)
        {
            throw new InvalidDataException($"BuddySystem: shared heap '{path}' has format version {header.Version}; this library reads version {SharedHeapHeader.CurrentVersion}.");
        }

        bool plausible = header.MinShift is >= 3 and <= 12 && header.RootSize is >= 8 and <= 1 << 20 && header.RootSize % 8 == 0 &&
            header.Capacity >> (int)header.MinShift is > 0 and <= 1UL << BuddyTree.MaxTreeOrder;
        if (header.ComputeHash() != header.GeometryHash || !plausible ||
            !header.SameGeometry(SharedHeapHeader.Geometry(header.Capacity, (int)header.MinShift, header.RootSize, header.LockAbi)))
        {
            throw new InvalidDataException($"BuddySystem: the header of shared heap '{path}' is corrupted (its checksum or geometry does not hold).");
        }

        if (header.LockAbi != s_lockAbi)
        {
            throw new InvalidDataException($"BuddySystem: shared heap '{path}' was made with lock ABI {header.LockAbi} ({AbiName(header.LockAbi)}); this process uses {s_lockAbi} ({AbiName(s_lockAbi)}), whose mutex has another layout.");
        }

        if ((ulong)length < header.FileLength)
        {
            throw new InvalidDataException($"BuddySystem: shared heap '{path}' is truncated: {length} bytes, its header needs {header.FileLength}.");
        }

        if (header.IntentOp > OpFreeFrom)
        {
            throw new InvalidDataException($"BuddySystem: the header of shared heap '{path}' is corrupted (unknown intent {header.IntentOp}).");
        }

        return header;
    }

    private static string AbiName(ulong abi) => abi switch
    {
        1 => "glibc x86-64",
        2 => "glibc arm64",
        _ => "unknown",
    };

    /// <summary>Under the lock: when the previous holder died inside an operation, finishes or undoes it (see the
    /// class remarks), rebuilds the tree and counters from the block states, and clears the intent record. Idempotent, so
    /// a holder killed while recovering leaves the same work to the next one.</summary>
    /// <returns><see langword="true"/> when there was an interrupted operation to recover.</returns>
    private bool RecoverIfNeeded()
    {
        SharedHeapHeader* header = _header;
        ulong op = Volatile.Read(ref header->IntentOp);
        if (op == 0)
        {
            return false;
        }

        ulong offset = header->IntentOffset;
        ulong order = header->IntentOrder;
        ulong slot = header->IntentSlot;
        ulong end = _dataOffset + Capacity;
        bool slotOk = op is OpAllocate or OpFree || ((slot & 7) == 0 && slot >= _rootOffset && slot + 8 <= _fileLength);
        if (op > OpFreeFrom || offset < _dataOffset || offset >= end || order > (ulong)_treeOrder || !slotOk ||
            ((offset - _dataOffset) & ((1UL << ((int)order + _minShift)) - 1)) != 0)
        {
            ThrowCorrupt($"the intent record (operation {op}, offset {offset}, order {order}, slot {slot}) is not one this heap writes");
        }

        ulong unit = (offset - _dataOffset) >> _minShift;
        switch (op)
        {
            case OpAllocate:
            case OpAllocateInto:
                // Undo: the call never returned, so nobody holds the offset.
                _states[unit] = 0;
                CrashPoint();
                if (op == OpAllocateInto)
                {
                    Volatile.Write(ref *(ulong*)(_base + slot), header->IntentOldSlot);
                    CrashPoint();
                }

                break;
            default:
                // Redo: the caller asked for the block to go.
                if (op == OpFreeFrom)
                {
                    Volatile.Write(ref *(ulong*)(_base + slot), 0UL);
                    CrashPoint();
                }

                _states[unit] = 0;
                CrashPoint();
                break;
        }

        // Only the block's node and its ancestors were written by the interrupted call (or by an interrupted recovery of
        // it): the block is now free and wholly free below, every node off the path is as it was, so recomputing the path
        // up to the root restores the tree. The counters are set, not adjusted, so a recovery killed here can run again.
        nuint index = (_leafCount >> (int)order) + (nuint)(unit >> (int)order);
        _nodes[index] = (byte)(order + 1);
        RepairPath(index, (int)order);
        CrashPoint();
        ulong blockBytes = 1UL << ((int)order + _minShift);
        bool rolledBack = op is OpAllocate or OpAllocateInto;
        ulong oldAllocated = header->IntentOldAllocatedBytes;
        long oldLive = header->IntentOldLiveBlocks;
        if (oldAllocated > Capacity || oldLive < 0 || (ulong)oldLive > _units || (!rolledBack && (oldAllocated < blockBytes || oldLive < 1)))
        {
            ThrowCorrupt($"the intent record's old counters ({oldLive} blocks, {oldAllocated} bytes) do not fit the heap");
        }

        header->AllocatedBytes = rolledBack ? oldAllocated : oldAllocated - blockBytes;
        header->LiveBlocks = rolledBack ? oldLive : oldLive - 1;
        header->Recoveries++;
        CrashPoint();
        Volatile.Write(ref header->IntentOp, 0);
        CrashPoint();
        return true;
    }

    /// <summary>Recomputes every ancestor of <paramref name="index"/> (a node of <paramref name="order"/>) from its
    /// children, up to the root, without stopping early: after a crash the path may be stale at any level.</summary>
    private void RepairPath(nuint index, int order)
    {
        while (index > 1)
        {
            nuint left = index & ~(nuint)1;
            byte value = TreeNodes.Combine(_nodes[left], _nodes[left + 1], order);
            index >>= 1;
            order++;
            _nodes[index] = value;
        }
    }

    /// <summary>Computes the whole tree into <paramref name="nodes"/> from the block states, level by level from the
    /// leaves: an allocated block's node is 0, every other node combines its children (below an allocated block everything
    /// is wholly free, since blocks do not overlap). Also counts the allocated blocks and bytes.</summary>
    private void RebuildIndex(byte* nodes, out ulong allocatedBytes, out long liveBlocks)
    {
        allocatedBytes = 0;
        liveBlocks = 0;
        nuint leaves = _leafCount;
        for (nuint i = 0; i < leaves; i++)
        {
            byte state = i < _units ? _states[i] : (byte)0;
            nodes[leaves + i] = i >= _units || state == 1 ? (byte)0 : (byte)1;
            if (state != 0 && i < _units)
            {
                liveBlocks++;
                allocatedBytes += 1UL << (state - 1 + _minShift);
            }
        }

        for (int order = 1; order <= _treeOrder; order++)
        {
            nuint start = leaves >> order;
            for (nuint j = 0; j < start; j++)
            {
                nuint index = start + j;
                ulong unit = (ulong)j << order;
                nodes[index] = unit < _units && _states[unit] == order + 1
                    ? (byte)0
                    : TreeNodes.Combine(nodes[2 * index], nodes[(2 * index) + 1], order - 1);
            }
        }
    }

    private void CollectBlocks(nuint index, int order, List<(ulong, int, bool)> blocks)
    {
        ulong unit = (ulong)(index - (_leafCount >> order)) << order;
        if (unit >= _units)
        {
            return;
        }

        ulong offset = _dataOffset + (unit << _minShift);
        byte value = _nodes[index];
        if (value == order + 1)
        {
            blocks.Add((offset, order, false));
        }
        else if (_states[unit] == order + 1)
        {
            blocks.Add((offset, order, true));
        }
        else if (order > 0)
        {
            CollectBlocks(2 * index, order - 1, blocks);
            CollectBlocks((2 * index) + 1, order - 1, blocks);
        }
    }

    [System.Diagnostics.CodeAnalysis.DoesNotReturn]
    private void ThrowCorrupt(string why) =>
        throw new HeapCorruptionException($"{HeapCorruptionException.Prefix}shared heap '{_path}': {why}.");
}
