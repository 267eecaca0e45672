namespace BuddySystem.Cli.Bench;

/// <summary>
/// <c>shared-heap</c>: a <see cref="SharedHeap"/> in a new file in <c>/dev/shm</c> (deleted on dispose), alone in this
/// process. A block is this process's address of its offset, so the replayer can fill and check it; every call takes and
/// releases the heap's robust process-shared mutex, as it does when other processes share the file.
/// </summary>
internal readonly unsafe struct SharedHeapAllocator : IBenchAllocator
{
    private readonly SharedHeap _heap;
    private readonly nuint _base;

    private SharedHeapAllocator(SharedHeap heap)
    {
        _heap = heap;
        _base = (nuint)heap.Pointer(0);
    }

    public static bool IsThreadSafe => true;

    public static bool IsArena => true;

    public nuint RegionStart => _base + (nuint)_heap.DataOffset;

    /// <summary>Why the engine cannot run here, or null.</summary>
    public static string? Unavailable => OperatingSystem.IsLinux() ? null : "SharedHeap needs Linux";

    /// <summary>A shared heap of <paramref name="heapSize"/> bytes of blocks in a new file, its pages touched.</summary>
    public static SharedHeapAllocator Create(nuint heapSize)
    {
        string directory = Directory.Exists("/dev/shm") ? "/dev/shm" : Path.GetTempPath();
        string path = Path.Combine(directory, $"buddy-bench-{Environment.ProcessId}-{Guid.NewGuid():n}.heap");
        SharedHeap heap = SharedHeap.Create(path, heapSize);
        new Span<byte>(heap.Pointer(heap.DataOffset), checked((int)Math.Min(heap.Capacity, int.MaxValue))).Clear(); // touch the pages before timing
        return new SharedHeapAllocator(heap);
    }

    public nuint Allocate(nuint size, nuint align) => _heap.TryAllocate(size, align, out ulong offset) ? _base + (nuint)offset : 0;

    // No size needed: the heap's state byte says the block's order.
    public void Free(nuint block, nuint size, nuint align) => _heap.Free(block - _base);

    // An offset allocator has no reallocate of its own: allocate, copy, free (the old block stays when it fails).
    public nuint Reallocate(nuint block, nuint size, nuint align, nuint newSize) =>
        OffsetMoves.Reallocate(this, _heap.BlockSizeFor(newSize, align) == _heap.BlockSizeFor(size, align), block, size, align, newSize);

    public nuint BlockSize(nuint block, nuint size, nuint align) => (nuint)_heap.SizeOf(block - _base);

    public void Dispose()
    {
        string path = _heap.FilePath;
        _heap.Dispose();
        File.Delete(path);
    }
}
