namespace BuddySystem;

/// <summary>
/// A block of native memory from <see cref="NativeMemory.AlignedAlloc"/>, freed on <see cref="Dispose"/>: memory to hand
/// to <see cref="BuddyHeap.AddRegion(void*, nuint)"/>, like the tutorial's static heap array in <c>.bss</c>.
/// </summary>
/// <remarks>
/// The region reports its size to the garbage collector with <see cref="GC.AddMemoryPressure(long)"/> so the GC knows
/// what the process holds, and removes it on dispose. Thread safety: <see cref="Dispose"/> may be called from any thread, once or more.
/// </remarks>
public sealed unsafe class NativeRegion : IDisposable
{
    // An integer so Dispose can claim it atomically with Interlocked.Exchange.
    private nint _address;

    /// <summary>A region of <paramref name="size"/> bytes aligned to the largest power of two not above it, so that a buddy
    /// engine's region starts as one block (the engines' <c>Create</c>).</summary>
    internal static NativeRegion StartingAsOneBlock(nuint size)
        => new(size, System.Numerics.BitOperations.RoundUpToPowerOf2(size) == size ? size : (nuint)1 << Internals.Orders.FloorLog2(size));

    /// <summary>Allocates <paramref name="size"/> bytes aligned to <paramref name="alignment"/>.</summary>
    /// <param name="size">Bytes; at least 1.</param>
    /// <param name="alignment">A power of two; the region's start is a multiple of it.</param>
    /// <param name="touchPages">Write every page once so the operating system maps it before use (what benchmarks want).</param>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="size"/> is zero.</exception>
    /// <exception cref="ArgumentException"><paramref name="alignment"/> is not a power of two.</exception>
    /// <exception cref="OutOfMemoryException">The memory could not be had.</exception>
    public NativeRegion(nuint size, nuint alignment = 4096, bool touchPages = false)
    {
        ArgumentOutOfRangeException.ThrowIfZero(size);
        if (!System.Numerics.BitOperations.IsPow2(alignment))
        {
            ThrowHelper.ThrowAlignNotPowerOfTwo(alignment);
        }

        _address = (nint)NativeMemory.AlignedAlloc(size, alignment);
        Size = size;
        Alignment = alignment;
        if (touchPages)
        {
            for (nuint offset = 0; offset < size; offset += 4096)
            {
                ((byte*)_address)[offset] = 0;
            }
        }

        GC.AddMemoryPressure((long)Math.Min((ulong)size, long.MaxValue));
    }

    /// <summary>The first byte of the region.</summary>
    /// <exception cref="ObjectDisposedException">The region was disposed.</exception>
    public void* Pointer
    {
        get
        {
            nint address = Volatile.Read(ref _address);
            ObjectDisposedException.ThrowIf(address == 0, this);
            return (void*)address;
        }
    }

    /// <summary>The first byte of the region as an integer address (0 after dispose).</summary>
    public nuint Address => (nuint)Volatile.Read(ref _address);

    /// <summary>Bytes in the region.</summary>
    public nuint Size { get; }

    /// <summary>The alignment of the start.</summary>
    public nuint Alignment { get; }

    /// <summary>Whether <paramref name="address"/> lies in [start, start + size).</summary>
    /// <param name="address">Any address.</param>
    /// <returns><see langword="true"/> when the region holds that byte.</returns>
    public bool Contains(void* address) => _address != 0 && (nuint)address - (nuint)_address < Size;

    /// <summary>Frees the memory. Calling it again is harmless.</summary>
    public void Dispose()
    {
        nint address = Interlocked.Exchange(ref _address, 0);
        if (address != 0)
        {
            NativeMemory.AlignedFree((void*)address);
            GC.RemoveMemoryPressure((long)Math.Min((ulong)Size, long.MaxValue));
            GC.SuppressFinalize(this);
        }
    }

    /// <summary>Frees the memory if the owner forgot to.</summary>
    ~NativeRegion()
    {
        Dispose();
    }
}
