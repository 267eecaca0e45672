namespace BuddySystem;

/// <summary>
/// Thrown by typed fronts (containers, pools, <c>BuddyTree.Allocate</c>) when the allocator cannot
/// serve a request: the tutorial's <c>alloc_error_handler</c>, as an exception.
/// </summary>
/// <remarks>Derives from <see cref="OutOfMemoryException"/> so code that already handles running out of memory handles it too.
/// The heap that failed is unchanged and still usable.</remarks>
public sealed class HeapExhaustedException : OutOfMemoryException
{
    /// <summary>Creates an exception with a generic message.</summary>
    public HeapExhaustedException()
        : base("BuddySystem: the heap cannot serve the request.")
    {
    }

    /// <summary>Creates an exception with the given message.</summary>
    /// <param name="message">The message.</param>
    public HeapExhaustedException(string message)
        : base(message)
    {
    }

    /// <summary>Creates an exception with the given message and inner exception.</summary>
    /// <param name="message">The message.</param>
    /// <param name="innerException">The cause.</param>
    public HeapExhaustedException(string message, Exception innerException)
        : base(message, innerException)
    {
    }

    /// <summary>Creates an exception naming the request and, when known, the heap's free bytes and largest free block.</summary>
    /// <param name="requestedSize">Bytes requested.</param>
    /// <param name="requestedAlign">Alignment requested.</param>
    /// <param name="freeBytes">Free bytes of the heap at the time, when known.</param>
    /// <param name="largestFreeBlock">Largest free block of the heap at the time, when known.</param>
    public HeapExhaustedException(ulong requestedSize, ulong requestedAlign, ulong? freeBytes, ulong? largestFreeBlock)
        : base(Describe(requestedSize, requestedAlign, freeBytes, largestFreeBlock))
    {
        RequestedSize = requestedSize;
        RequestedAlign = requestedAlign;
        FreeBytes = freeBytes;
        LargestFreeBlock = largestFreeBlock;
    }

    /// <summary>Bytes requested.</summary>
    public ulong RequestedSize { get; }

    /// <summary>Alignment requested.</summary>
    public ulong RequestedAlign { get; }

    /// <summary>Free bytes of the heap when the request failed, when the allocator reports them.</summary>
    public ulong? FreeBytes { get; }

    /// <summary>The largest free block when the request failed, when the allocator reports it.</summary>
    public ulong? LargestFreeBlock { get; }

    /// <summary>Builds the exception for a failed <paramref name="layout"/> on <paramref name="allocator"/>, reading its stats when it has them.</summary>
    /// <param name="allocator">The allocator that returned null.</param>
    /// <param name="layout">The request it could not serve.</param>
    /// <returns>The exception to throw.</returns>
    /// <remarks>The engines of this library answer from their counters and free-list masks, without walking a list under
    /// their lock; other allocators are asked for their <see cref="IHeapStatsSource.Stats"/>.</remarks>
    public static HeapExhaustedException For(IAllocator allocator, Layout layout)
    {
        if (allocator is IExhaustionInfoSource engine)
        {
            (ulong free, ulong largest) = engine.ExhaustionInfo();
            return new HeapExhaustedException(layout.Size, layout.Align, free, largest);
        }

        if (allocator is IHeapStatsSource source)
        {
            HeapStats stats = source.Stats;
            return new HeapExhaustedException(layout.Size, layout.Align, stats.FreeBytes, stats.LargestFreeBlock);
        }

        return new HeapExhaustedException(layout.Size, layout.Align, null, null);
    }

    private static string Describe(ulong size, ulong align, ulong? free, ulong? largest)
    {
        string heap = free is null ? "the allocator does not report its free space" :
            $"{free} bytes free, largest free block {largest} bytes";
        return $"BuddySystem: cannot allocate {size} bytes aligned to {align}: {heap}.";
    }
}

/// <summary>An engine that can say, cheaply, what a failed allocation should report.</summary>
internal interface IExhaustionInfoSource
{
    /// <summary>Free bytes and the largest block an allocation can obtain now; O(orders), no list walk.</summary>
    (ulong FreeBytes, ulong LargestFreeBlock) ExhaustionInfo();
}
