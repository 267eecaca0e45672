namespace BuddySystem.Testing;

/// <summary>
/// Drives <see cref="SharedHeap"/> through the pointer contract, so the soak, stress, fuzz and model workloads cover it
/// too: a heap in a new file in <c>/dev/shm</c> (deleted on dispose), a block's address being this process's address of
/// its offset. Blocks are aligned to their size up to the page (4096), as the shared heap promises.
/// </summary>
/// <remarks>The heap does not count requested bytes; this adapter does (atomically: the heap is thread-safe), so
/// <see cref="Stats"/> can report <see cref="HeapStats.UserBytes"/>. Alignments above 4096 are refused by the heap with
/// an <see cref="ArgumentException"/>, and so by this adapter.</remarks>
internal sealed unsafe class SharedHeapTestHeap : IAllocator, IHeapStatsSource, IDisposable
{
    private readonly ulong _base;
    private long _userBytes;
    private long _failedAllocations;

    internal SharedHeapTestHeap(nuint capacity)
    {
        string directory = Directory.Exists("/dev/shm") ? "/dev/shm" : Path.GetTempPath();
        Heap = SharedHeap.Create(Path.Combine(directory, $"buddy-test-{Environment.ProcessId}-{Guid.NewGuid():n}.heap"), capacity);
        _base = (ulong)Heap.Pointer(0);
    }

    /// <summary>True: the shared heap takes its process-shared lock in every call.</summary>
    public bool IsThreadSafe => true;

    internal SharedHeap Heap { get; }

    /// <summary>A shared heap of <paramref name="capacity"/> bytes under test: thread-safe, an offset engine (not in the
    /// misuse matrix of pointer heaps; its own misuse tests are <c>SharedHeapTests</c>).</summary>
    internal static HeapTarget Target(string name, nuint capacity)
    {
        var heap = new SharedHeapTestHeap(capacity);
        return HeapTarget.Of(name, heap, heap, heap.Heap.Validate, () => heap.Stats, pointerHeap: false, blockSize: heap.BlockSizeOf, blockAlignment: heap.BlockAlignmentOf);
    }

    public void* Allocate(Layout layout)
    {
        if (!Heap.TryAllocate(layout.Size, layout.Align, out ulong offset))
        {
            Interlocked.Increment(ref _failedAllocations);
            return null;
        }

        Interlocked.Add(ref _userBytes, (long)layout.Size);
        return (void*)(_base + offset);
    }

    /// <summary>Frees the block at <paramref name="ptr"/> after checking that <paramref name="layout"/> maps to its size
    /// (the heap itself needs no size); misuse is an <see cref="ArgumentException"/> naming the address, as the pointer
    /// contract asks, wrapping the heap's message about the offset. Not atomic with concurrent frees of the same block
    /// (the heap's own <see cref="SharedHeap.Free"/> is).</summary>
    public void Deallocate(void* ptr, Layout layout)
    {
        ulong offset = (ulong)ptr - _base;
        try
        {
            ulong size = Heap.SizeOf(offset);
            if (size != BlockSizeOf(layout))
            {
                throw new ArgumentException($"Cannot free 0x{(ulong)ptr:x} with {layout}: its block is {size} bytes, the layout maps to {BlockSizeOf(layout)}.", nameof(layout));
            }

            Heap.Free(offset);
        }
        catch (ArgumentException e) when (!e.Message.Contains($"0x{(ulong)ptr:x}", StringComparison.OrdinalIgnoreCase))
        {
            throw new ArgumentException($"Cannot free address 0x{(ulong)ptr:x}: {e.Message}", nameof(ptr), e);
        }

        Interlocked.Add(ref _userBytes, -(long)layout.Size);
    }

    /// <summary>The block size the heap hands out for <paramref name="layout"/>.</summary>
    internal ulong BlockSizeOf(Layout layout) => Heap.BlockSizeFor(layout.Size, layout.Align);

    /// <summary>The alignment the heap promises for <paramref name="layout"/>: its block size, up to the page.</summary>
    internal ulong BlockAlignmentOf(Layout layout) => Math.Min(BlockSizeOf(layout), 4096UL);

    public HeapStats Stats
    {
        get
        {
            HeapStats stats = Heap.Stats;
            return stats with { UserBytes = (ulong)Volatile.Read(ref _userBytes), FailedAllocations = Volatile.Read(ref _failedAllocations) };
        }
    }

    public void Dispose()
    {
        string path = Heap.FilePath;
        Heap.Dispose();
        File.Delete(path);
    }
}
