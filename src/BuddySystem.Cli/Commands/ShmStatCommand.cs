using BuddySystem.Diagnostics;

namespace BuddySystem.Cli.Commands;

/// <summary>
/// <c>buddy shm stat FILE</c>: opens a shared heap (recovering it first if a process died inside a call, as every
/// <see cref="SharedHeap.Open"/> does), validates it, and prints its capacity, allocated and free bytes, live blocks,
/// largest free block, the counters shared by its processes, and per order its buddyinfo row with Linux's U(j) and F(j).
/// The lock's state (free, held by pid N, or holder dead) is read before the heap is opened, since opening recovers a
/// dead holder's heap. A file that other users can write is refused unless <c>--allow-other-writers</c> is given.
/// A file that is missing, not a heap, of another version, truncated or with a corrupted header: one line on stderr,
/// exit 2; a heap that fails <see cref="SharedHeap.Validate"/>: one line on stderr, exit 1.
/// </summary>
internal static class ShmStatCommand
{
    internal static Command Create()
    {
        var file = new Argument<string>("file") { Description = "The heap file (made by SharedHeap.Create)." };
        var allowOtherWriters = ShmCommand.AllowOtherWriters();
        var command = new Command("stat", "Print a shared heap's lock state, stats, its buddyinfo row and fragmentation indices.") { file, allowOtherWriters };
        command.SetAction(result => Run(result.GetValue(file)!, Console.Out, result.InvocationConfiguration.Error, result.GetValue(allowOtherWriters)));
        return command;
    }

    internal static int Run(string path, TextWriter output, TextWriter error, bool allowOtherWriters = false)
    {
        const string Name = "buddy shm stat";
        SharedHeapLockState? lockState = null;
        try
        {
            lockState = SharedHeap.PeekLockState(path);
        }
        catch (Exception e) when (e is IOException or InvalidDataException or UnauthorizedAccessException or PlatformNotSupportedException)
        {
            // The open below names the same problem.
        }

        using SharedHeap? heap = ShmCommand.TryOpen(path, Name, error, new SharedHeapOptions { AllowOtherWriters = allowOtherWriters });
        if (heap == null)
        {
            return 2;
        }

        HeapStats stats;
        HeapSnapshot snapshot;
        long recoveries;
        long ownerDeaths;
        try
        {
            heap.Validate();
            stats = heap.Stats;
            snapshot = HeapSnapshot.Of(heap);
            recoveries = heap.Recoveries;
            ownerDeaths = heap.LockOwnerDeaths;
        }
        catch (HeapCorruptionException e)
        {
            error.WriteLine($"{Name}: {e.Message}");
            return 1;
        }

        Write(output, heap, stats, snapshot, recoveries);
        output.WriteLine(string.Create(CultureInfo.InvariantCulture, $"lock                  {lockState?.ToString() ?? "unknown"} (before this open); {ownerDeaths:N0} holder deaths found by callers"));
        return 0;
    }

    private static unsafe int NonZeroRootSlots(SharedHeap heap)
    {
        // Not under the heap's lock: a figure for people, which other processes may change as it is read.
        int count = 0;
        ulong* slots = (ulong*)heap.Pointer(heap.RootOffset);
        for (int i = 0; i < heap.RootSize / 8; i++)
        {
            count += Volatile.Read(ref slots[i]) != 0 ? 1 : 0;
        }

        return count;
    }

    /// <summary>The blocks and bytes come from one snapshot (one lock), the counters and metadata from the stats.</summary>
    private static void Write(TextWriter output, SharedHeap heap, HeapStats stats, HeapSnapshot snapshot, long recoveries)
    {
        CultureInfo inv = CultureInfo.InvariantCulture;
        int top = snapshot.OrderCount - 1;
        output.WriteLine($"shared heap {heap.FilePath}");
        output.WriteLine(string.Create(inv, $"  capacity            {ByteSize.Long(stats.TotalBytes)} ({stats.TotalBytes:N0} bytes), blocks of {ByteSize.Long(stats.MinBlockSize)} (order 0) to {ByteSize.Long(stats.MinBlockSize << top)} (order {top}), first block at offset {heap.DataOffset:N0}"));
        output.WriteLine(string.Create(inv, $"  allocated           {ByteSize.Rounded(snapshot.AllocatedBytes)} ({snapshot.AllocatedBytes:N0} bytes) in {snapshot.LiveBlocks:N0} live block{(snapshot.LiveBlocks == 1 ? string.Empty : "s")}"));
        output.WriteLine(string.Create(inv, $"  free                {ByteSize.Rounded(snapshot.FreeBytes)} ({snapshot.FreeBytes:N0} bytes) in {snapshot.Blocks.Count - snapshot.LiveBlocks:N0} free blocks"));
        output.WriteLine(string.Create(inv, $"  largest free block  {ByteSize.Long(snapshot.LargestFreeBlock)}"));
        output.WriteLine(string.Create(inv, $"  metadata            {ByteSize.Rounded(stats.MetadataBytes)} (header, state bytes, tree)"));
        output.WriteLine(string.Create(inv, $"  root area           {ByteSize.Long((ulong)heap.RootSize)} at offset {heap.RootOffset:N0}, {NonZeroRootSlots(heap):N0} of {heap.RootSize / 8:N0} slots non-zero"));
        output.WriteLine(string.Create(inv, $"  counters            {stats.Allocations:N0} allocations, {stats.FailedAllocations:N0} failed, {recoveries:N0} recoveries (by all processes)"));
        output.WriteLine("  validate            OK");
        output.WriteLine("free blocks per order (/proc/buddyinfo), U(j) unusable free index, F(j) fragmentation index (-1: a block is free):");
        output.WriteLine("  order  block        free      U(j)   F(j)");
        for (int order = 0; order <= top; order++)
        {
            output.WriteLine(string.Create(inv, $"  {order,5}  {ByteSize.Long(stats.MinBlockSize << order),-9}  {snapshot.FreeBlocksByOrder[order],7:N0}  {snapshot.UnusableFreeIndex(order),6:0.000}  {snapshot.FragmentationIndex(order),5:0.000}"));
        }

        output.WriteLine("buddyinfo " + string.Join(' ', snapshot.FreeBlocksByOrder.Select(count => count.ToString(inv))));
    }
}
