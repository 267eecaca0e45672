using System.Globalization;

namespace BuddySystem.Testing;

/// <summary>
/// Drives the frame-number engine <see cref="FrameAllocator"/> through the pointer contract, so the soak, fuzz and model
/// workloads cover it too: frame f is the 16 bytes at <c>start + 16 f</c> of a native region aligned to its size, a request
/// of n bytes aligned to a asks for ceil(n / 16) frames aligned to max(1, a / 16) frames, so block sizes and alignment
/// match the pointer heaps exactly.
/// </summary>
/// <remarks>The frame allocator counts frames, not blocks or requested bytes; this adapter counts those, so
/// <see cref="Stats"/> can report them. Its misuse messages name the first frame (<c>[frame, +count)</c>).</remarks>
internal sealed unsafe class FrameAllocatorHeap : IAllocator, IHeapStatsSource, IDisposable
{
    /// <summary>Bytes per frame: the pointer heaps' smallest block.</summary>
    internal const int FrameBytes = 16;

    private readonly NativeRegion _region;
    private readonly ulong _base;
    private ulong _userBytes;
    private long _liveBlocks;
    private long _failedAllocations;

    internal FrameAllocatorHeap(nuint capacity)
    {
        _region = new NativeRegion(capacity, capacity);
        _base = (ulong)_region.Pointer;
        Frames = new FrameAllocator();
        Frames.AddFrames(0, capacity / FrameBytes);
    }

    internal FrameAllocator Frames { get; }

    /// <summary>How the frame allocator names the block at <paramref name="address"/> in its messages.</summary>
    internal string Describe(void* address) => "[" + (((ulong)address - _base) / FrameBytes).ToString(CultureInfo.InvariantCulture) + ",";

    public void* Allocate(Layout layout)
    {
        ulong? frame = Frames.AllocateAligned(FramesFor(layout.Size), Math.Max(1, (ulong)layout.Align / FrameBytes));
        if (frame is not ulong first)
        {
            _failedAllocations++;
            return null;
        }

        _userBytes += layout.Size;
        _liveBlocks++;
        return (void*)(_base + (first * FrameBytes));
    }

    public void Deallocate(void* ptr, Layout layout)
    {
        ulong offset = (ulong)ptr - _base;
        if (offset % FrameBytes != 0)
        {
            // The frame allocator cannot see an address inside a frame; name the frame it lies in, as it would.
            throw new ArgumentException($"Cannot deallocate frames {Describe(ptr)} +{FramesFor(layout.Size)}): address 0x{(ulong)ptr:x} lies inside a frame.", nameof(ptr));
        }

        ulong frames = Math.Max(FramesFor(layout.Size), Math.Max(1, (ulong)layout.Align / FrameBytes));
        Frames.Deallocate(offset / FrameBytes, System.Numerics.BitOperations.RoundUpToPowerOf2(frames));
        _userBytes -= layout.Size;
        _liveBlocks--;
    }

    public HeapStats Stats
    {
        get
        {
            IReadOnlyList<long> byOrder = Frames.FreeBlocksByOrder;
            ulong largest = 0;
            for (int order = byOrder.Count - 1; order >= 0 && largest == 0; order--)
            {
                largest = byOrder[order] != 0 ? (ulong)FrameBytes << order : 0;
            }

            return new HeapStats
            {
                UserBytes = _userBytes,
                AllocatedBytes = Frames.AllocatedFrames * FrameBytes,
                TotalBytes = Frames.TotalFrames * FrameBytes,
                FreeBytes = Frames.FreeFrames * FrameBytes,
                LargestFreeBlock = largest,
                LiveBlocks = _liveBlocks,
                FailedAllocations = _failedAllocations,
                MinBlockSize = FrameBytes,
                FreeBlocksByOrder = byOrder,
            };
        }
    }

    private static ulong FramesFor(nuint size) => ((ulong)size + FrameBytes - 1) / FrameBytes;

    public void Dispose() => _region.Dispose();
}
