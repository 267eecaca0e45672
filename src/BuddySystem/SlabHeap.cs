using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using BuddySystem.Internals;

namespace BuddySystem;

/// <summary>
/// A size-class slab allocator over a <see cref="BuddyHeap"/>: small requests are objects cut from slabs that are buddy
/// blocks, large requests are buddy blocks cut to their length. Linux's SLUB on its buddy page allocator, in this
/// project's own design, with the exact misuse detection of <see cref="BuddyHeap"/>.
/// </summary>
/// <remarks>
/// <para><b>Design.</b> Requests of at most 8 KiB (size and alignment) map to one of 56 size classes (16 to 128 bytes in
/// steps of 16, then eight per doubling: at most 12.5 % waste inside an object). A slab is one buddy block of 16 to 64 KiB
/// (smaller when the heap has no such block left) holding objects of one class at multiples of the class size; its free
/// objects are linked through their first word. A pointer's slab is found in O(1) through a page map, one entry per
/// 1 KiB page of each region (Linux's <c>virt_to_page</c> and compound head): the entry points to the slab's
/// descriptor, or marks the first page of a large block with its length. Descriptors, page maps and one allocation bit
/// per 16-byte granule live in native memory outside the managed bytes. Each class keeps a list of slabs with free
/// objects; a slab that becomes empty stays in it while its class holds no other empty slab (hysteresis, so a ping-pong
/// at a slab boundary does not thrash the buddy engine) and otherwise goes back to the buddy engine.</para>
/// <para><b>Large requests</b> take a buddy block of max(next power of two of size, align) bytes and give its unused tail
/// back as smaller buddies at once (Linux's <c>alloc_pages_exact</c>), keeping the size rounded up to 1 KiB.</para>
/// <para><b>Cost.</b> Allocate pops the first slab of its class (O(1)); Deallocate reads the page map and pushes (O(1)).
/// Making or returning a slab costs O(objects in it) and one buddy allocation or free; a large block costs O(orders).</para>
/// <para><b>Misuse.</b> Deallocate checks, before changing anything, that the pointer lies in a region, starts an object
/// of a slab (its offset a multiple of the class size) or a large block, that its allocation bit is set, and that the
/// layout maps to its class (or, for a large block, to its length); otherwise it throws, naming the address, with the
/// exceptions and messages of <see cref="BuddyHeap"/>, and the heap is unchanged.</para>
/// <para><b>Thread safety.</b> None: use one thread at a time (a thread-safe form is not built yet).</para>
/// </remarks>
public sealed unsafe partial class SlabHeap : IAllocator, IHeapStatsSource, IDisposable
{
    /// <summary>log2 of the page-map granularity: 1 KiB.</summary>
    internal const int PageShift = 10;

    private const int GranuleShift = 4;

    /// <summary>Empty slabs a class keeps before further empty slabs go back to the buddy engine.</summary>
    private const int EmptySlabsKept = 1;

    private readonly BuddyHeap _buddy;
    private readonly SizeClass[] _classArray;
    private readonly SizeClass* _classes;

    private SlabRegion[] _regions = [];
    private int _lastRegion;

    private ulong _userBytes;
    private ulong _allocatedBytes;
    private ulong _slabBytes;
    private ulong _slabObjectBytes;
    private long _slabs;
    private long _liveBlocks;
    private long _allocations;
    private long _failedAllocations;

    private readonly List<IDisposable> _ownedRegions = [];
    private bool _disposed;

    /// <summary>Creates an empty heap; give it memory with <see cref="AddRegion(void*, nuint)"/>.</summary>
    public SlabHeap()
    {
        // The slabs are the caching layer: the buddy engine under them merges on every free.
        _buddy = new BuddyHeap(BuddyHeapOptions.Eager);
        _classArray = GC.AllocateArray<SizeClass>(SizeClasses.Count, pinned: true);
        _classes = (SizeClass*)Unsafe.AsPointer(ref MemoryMarshal.GetArrayDataReference(_classArray));
    }

    /// <summary>
    /// Creates a heap over a new native region of <paramref name="size"/> bytes, aligned to the largest power of two not
    /// above it; the region is freed when the heap is disposed.
    /// </summary>
    /// <param name="size">Bytes to manage; at least 16.</param>
    /// <returns>A heap that owns its memory.</returns>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="size"/> is smaller than 16.</exception>
    /// <exception cref="OutOfMemoryException">The process could not get the memory.</exception>
    public static SlabHeap Create(nuint size)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(size, BuddyHeap.MinBlockSize);
        var heap = new SlabHeap();
        var region = NativeRegion.StartingAsOneBlock(size);
        heap.AddRegion(region.Pointer, region.Size);
        heap._ownedRegions.Add(region);
        return heap;
    }

    /// <summary>The largest request (size and alignment) served as an object of a slab: 8 KiB. Larger requests are exact
    /// large blocks of the buddy engine.</summary>
    public const int MaxSmallSize = SizeClasses.MaxSize;

    /// <summary>The largest slab: 64 KiB. Every object lies inside one slab, a buddy block aligned to its size.</summary>
    public const int MaxSlabSize = 1 << SizeClasses.MaxSlabShift;

    /// <summary>The size classes' object sizes, smallest first (a small request takes the first that fits and aligns).</summary>
    public static IReadOnlyList<int> ClassSizes { get; } = [.. Enumerable.Range(0, SizeClasses.Count).Select(i => (int)SizeClasses.SizeOf(i))];

    /// <summary>The bytes this heap reserves for <paramref name="layout"/>: its class size, or for a large request its size
    /// rounded up to 1 KiB.</summary>
    /// <param name="layout">A request.</param>
    /// <returns>The block size <see cref="HeapStats.AllocatedBytes"/> counts for it.</returns>
    public static ulong BlockSizeFor(Layout layout)
        => SizeClasses.IsSmall(layout.Size, layout.Align) ? SizeClasses.SizeOf(SizeClasses.IndexOf(layout.Size, layout.Align)) : LargeLength(layout.Size);

    /// <summary>The alignment every block for <paramref name="layout"/> is sure to have, whatever its place: for an object,
    /// the lowest set bit of its class size (objects sit at multiples of the class size in slabs aligned to a larger power
    /// of two, so a 320-byte object is 64-aligned); for a large request, the buddy block it is cut from, aligned to its
    /// size. Never below <see cref="Layout.Align"/> (a class is picked whose size is a multiple of it).</summary>
    /// <param name="layout">A request.</param>
    /// <returns>A power of two.</returns>
    public static ulong BlockAlignmentFor(Layout layout)
        => SizeClasses.IsSmall(layout.Size, layout.Align)
            ? 1UL << BitOperations.TrailingZeroCount(SizeClasses.SizeOf(SizeClasses.IndexOf(layout.Size, layout.Align)))
            : 1UL << (Orders.OrderFor(layout.Size, layout.Align, GranuleShift) + GranuleShift);

    /// <summary>The buddy engine under the slabs (read-only use: snapshots and tests).</summary>
    internal BuddyHeap Buddy => _buddy;

    /// <summary>
    /// Adds the memory [<paramref name="start"/>, start + <paramref name="size"/>) to the heap, as
    /// <see cref="BuddyHeap.AddRegion(void*, nuint)"/> does (same rules and exceptions).
    /// </summary>
    /// <param name="start">First byte of the region. The memory must stay valid until the heap is disposed.</param>
    /// <param name="size">Bytes in the region.</param>
    /// <exception cref="ArgumentNullException"><paramref name="start"/> is null.</exception>
    /// <exception cref="ArgumentException">As for <see cref="BuddyHeap.AddRegion(void*, nuint)"/>; the heap is unchanged.</exception>
    /// <exception cref="ObjectDisposedException">The heap was disposed.</exception>
    /// <remarks>Metadata for the region (a page map of 8 bytes per KiB and one bit per 16 bytes) is native memory.</remarks>
    public void AddRegion(void* start, nuint size)
    {
        ThrowIfDisposed();
        _buddy.AddRegion(start, size);
        ulong raw = (ulong)start;
        ulong first = (raw + 15) & ~15UL;
        ulong end = (raw + size) & ~15UL;
        _regions = Regions.Insert(_regions, new SlabRegion(first, end), out _lastRegion);
    }

    /// <summary>
    /// Allocates an object of the first size class that holds <see cref="Layout.Size"/> bytes aligned to
    /// <see cref="Layout.Align"/> (requests up to 8 KiB), or a large block cut from the buddy engine.
    /// </summary>
    /// <param name="layout">Size and alignment wanted; a zero size gets a unique 16-byte object.</param>
    /// <returns>The block; <see langword="null"/> when neither a slab nor a buddy block can be had, even after returning the empty slabs.</returns>
    /// <exception cref="ObjectDisposedException">The heap was disposed.</exception>
    public void* Allocate(Layout layout)
    {
        if (SizeClasses.IsSmall(layout.Size, layout.Align))
        {
            // Fast path: pop the first slab of the class. A disposed heap has no slabs, so the slow path throws.
            int index = SizeClasses.IndexOf(layout.Size, layout.Align);
            SizeClass* sizeClass = _classes + index;
            Slab* slab = sizeClass->Head;
            if (slab != null)
            {
                return TakeObject(sizeClass, slab, layout.Size);
            }
        }

        return AllocateSlow(layout);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private void* TakeObject(SizeClass* sizeClass, Slab* slab, nuint userSize)
    {
        FreeObject* item = slab->Free;
        slab->Free = item->Next;
        if (slab->Used++ == 0)
        {
            sizeClass->EmptySlabs--;
        }

        if (slab->Free == null)
        {
            // Full slabs leave the class's list; the first free returns them to it.
            Unlink(sizeClass, slab);
        }

        ulong bit = ((ulong)item - slab->RegionStart) >> GranuleShift;
        slab->Bits[bit >> 6] |= 1UL << (int)(bit & 63);
        _userBytes += userSize;
        _allocatedBytes += slab->ObjectSize;
        _slabObjectBytes += slab->ObjectSize;
        _liveBlocks++;
        _allocations++;
        return item;
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private void* AllocateSlow(Layout layout)
    {
        ThrowIfDisposed();
        void* block = SizeClasses.IsSmall(layout.Size, layout.Align) ? AllocateFromNewSlab(layout) : AllocateLarge(layout);
        if (block == null && ReleaseEmptySlabs() != 0)
        {
            // Empty slabs kept for hysteresis may be what keeps a buddy block from merging: return them, try once more.
            block = SizeClasses.IsSmall(layout.Size, layout.Align) ? AllocateFromNewSlab(layout) : AllocateLarge(layout);
        }

        if (block == null)
        {
            _failedAllocations++;
        }

        return block;
    }

    private void* AllocateFromNewSlab(Layout layout)
    {
        int index = SizeClasses.IndexOf(layout.Size, layout.Align);
        Slab* slab = NewSlab(index);
        return slab == null ? null : TakeObject(_classes + index, slab, layout.Size);
    }

    private void* AllocateLarge(Layout layout)
    {
        int order = Orders.OrderFor(layout.Size, layout.Align, GranuleShift);
        if (order > BuddyHeap.MaxOrder || layout.Size > (nuint.MaxValue >> 1))
        {
            return null;
        }

        ulong length = Math.Min(LargeLength(layout.Size), 1UL << (order + GranuleShift));
        void* block = _buddy.AllocateExact(order, length);
        if (block == null)
        {
            return null;
        }

        ref SlabRegion region = ref RegionOf((ulong)block);
        region.Pages[((ulong)block >> PageShift) - region.FirstPage] = (nint)((length << 1) | 1);
        _userBytes += layout.Size;
        _allocatedBytes += length;
        _liveBlocks++;
        _allocations++;
        return block;
    }

    /// <summary>A large request's kept length: its size rounded up to 1 KiB.</summary>
    internal static ulong LargeLength(nuint size) => ((ulong)size + (1UL << PageShift) - 1) & ~((1UL << PageShift) - 1);

    /// <summary>Takes a buddy block for a new slab of class <paramref name="index"/>, at the preferred size or smaller.</summary>
    private Slab* NewSlab(int index)
    {
        void* block = TakeSlabBlock(_buddy, index, _classes[index].SlabsMade, out int shift);
        if (block == null)
        {
            return null;
        }

        ref SlabRegion region = ref RegionOf((ulong)block);
        uint objectSize = SizeClasses.SizeOf(index);
        var slab = (Slab*)NativeMemory.AllocZeroed((nuint)sizeof(Slab));
        slab->Start = (byte*)block;
        slab->Shift = shift;
        slab->ClassIndex = index;
        slab->ObjectSize = objectSize;
        slab->Reciprocal = (uint)((1UL << 32) / objectSize) + 1;
        slab->Capacity = (int)((1u << shift) / objectSize);
        slab->RegionStart = region.Start;
        slab->Bits = region.Bits;

        slab->Free = (FreeObject*)LinkObjects(block, slab->Capacity, objectSize);
        MapSlabPages(region.Pages, region.FirstPage, block, shift, (nint)slab);

        SizeClass* sizeClass = _classes + index;
        PushFront(sizeClass, slab);
        sizeClass->EmptySlabs++;
        sizeClass->SlabsMade++;
        _slabBytes += 1UL << shift;
        _slabs++;
        return slab;
    }

    /// <summary>Frees an object or a large block.</summary>
    /// <param name="ptr">A block returned by <see cref="Allocate"/> of this heap.</param>
    /// <param name="layout">A layout that maps to the same size class (or, for a large block, the same length) as the one used to allocate it.</param>
    /// <exception cref="ArgumentNullException"><paramref name="ptr"/> is null.</exception>
    /// <exception cref="ArgumentException"><paramref name="ptr"/> lies outside every region, is not the start of an
    /// object or block, or <paramref name="layout"/> maps to another class. The message names the address; the heap is unchanged.</exception>
    /// <exception cref="InvalidOperationException">The object at <paramref name="ptr"/> is not allocated (a double free);
    /// the message names the address; the heap is unchanged.</exception>
    /// <exception cref="ObjectDisposedException">The heap was disposed.</exception>
    public void Deallocate(void* ptr, Layout layout)
    {
        // Fast path: the page map says "slab", the offset is a multiple of the class size, the layout maps to the slab's
        // class and the object's allocation bit is set. Anything else takes the slow path, which finds out which and throws.
        ulong address = (ulong)ptr;
        SlabRegion[] regions = _regions;
        int last = _lastRegion;
        if ((uint)last < (uint)regions.Length && SizeClasses.IsSmall(layout.Size, layout.Align))
        {
            ref SlabRegion region = ref regions[last];
            if (address - region.Start < region.End - region.Start)
            {
                nint entry = region.Pages[(address >> PageShift) - region.FirstPage];
                if ((entry & 1) == 0 && entry != 0)
                {
                    var slab = (Slab*)entry;
                    uint offset = (uint)(address - (ulong)slab->Start);
                    uint index = (uint)(((ulong)offset * slab->Reciprocal) >> 32);
                    if (index * slab->ObjectSize == offset && SizeClasses.IndexOf(layout.Size, layout.Align) == slab->ClassIndex)
                    {
                        ulong bit = (address - slab->RegionStart) >> GranuleShift;
                        ulong* word = slab->Bits + (bit >> 6);
                        ulong mask = 1UL << (int)(bit & 63);
                        if ((*word & mask) != 0)
                        {
                            *word &= ~mask;
                            ReleaseObject(slab, (FreeObject*)ptr, layout.Size);
                            return;
                        }
                    }
                }
            }
        }

        DeallocateSlow(ptr, layout);
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private void DeallocateSlow(void* ptr, Layout layout)
    {
        ThrowIfDisposed();
        nint entry = CheckLiveBlock(ptr, layout, out int regionIndex);
        _lastRegion = regionIndex;
        ulong address = (ulong)ptr;
        if ((entry & 1) == 0)
        {
            var slab = (Slab*)entry;
            ulong bit = (address - slab->RegionStart) >> GranuleShift;
            slab->Bits[bit >> 6] &= ~(1UL << (int)(bit & 63));
            ReleaseObject(slab, (FreeObject*)ptr, layout.Size);
        }
        else
        {
            FreeLarge(address, (ulong)entry >> 1, layout.Size, ref _regions[regionIndex]);
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private void ReleaseObject(Slab* slab, FreeObject* item, nuint userSize)
    {
        _userBytes -= Math.Min(_userBytes, userSize);
        _allocatedBytes -= slab->ObjectSize;
        _slabObjectBytes -= slab->ObjectSize;
        _liveBlocks--;
        SizeClass* sizeClass = _classes + slab->ClassIndex;
        if (slab->Free == null)
        {
            PushFront(sizeClass, slab);
        }

        item->Next = slab->Free;
        slab->Free = item;
        if (--slab->Used == 0)
        {
            if (sizeClass->EmptySlabs < EmptySlabsKept)
            {
                sizeClass->EmptySlabs++;
            }
            else
            {
                ReturnSlab(sizeClass, slab);
            }
        }
    }

    /// <summary>Gives an empty slab back to the buddy engine.</summary>
    private void ReturnSlab(SizeClass* sizeClass, Slab* slab)
    {
        Unlink(sizeClass, slab);
        ref SlabRegion region = ref RegionOf((ulong)slab->Start);
        nint* page = region.Pages + (((ulong)slab->Start >> PageShift) - region.FirstPage);
        new Span<nint>(page, 1 << (slab->Shift - PageShift)).Clear();
        nuint size = (nuint)1 << slab->Shift;
        _buddy.Deallocate(slab->Start, new Layout(size, size));
        _slabBytes -= size;
        _slabs--;
        NativeMemory.Free(slab);
    }

    /// <summary>Returns every empty slab to the buddy engine; the number returned.</summary>
    private int ReleaseEmptySlabs()
    {
        int released = 0;
        for (int index = 0; index < SizeClasses.Count; index++)
        {
            SizeClass* sizeClass = _classes + index;
            for (Slab* slab = sizeClass->Head; slab != null && sizeClass->EmptySlabs != 0;)
            {
                Slab* next = slab->Next;
                if (slab->Used == 0)
                {
                    sizeClass->EmptySlabs--;
                    ReturnSlab(sizeClass, slab);
                    released++;
                }

                slab = next;
            }
        }

        return released;
    }

    /// <summary>Returns the empty slabs each class keeps for hysteresis to the buddy engine (an allocation that would fail does it by itself).</summary>
    /// <exception cref="ObjectDisposedException">The heap was disposed.</exception>
    public void Trim()
    {
        ThrowIfDisposed();
        ReleaseEmptySlabs();
    }

    private void FreeLarge(ulong address, ulong length, nuint userSize, ref SlabRegion region)
    {
        region.Pages[(address >> PageShift) - region.FirstPage] = 0;
        _userBytes -= Math.Min(_userBytes, userSize);
        _allocatedBytes -= length;
        _liveBlocks--;
        _buddy.FreeExact((void*)address, length);
    }

    /// <summary>
    /// Checks that <paramref name="ptr"/> is a live object or large block that <paramref name="layout"/> maps to and
    /// returns its page-map entry (a slab descriptor, or a tagged large length). Throws, naming the address, before
    /// anything changes.
    /// </summary>
    private nint CheckLiveBlock(void* ptr, Layout layout, out int regionIndex)
    {
        ulong address = (ulong)ptr;
        regionIndex = Regions.FindForFree(_regions, ptr);

        ref SlabRegion region = ref _regions[regionIndex];
        nint entry = region.Pages[(address >> PageShift) - region.FirstPage];
        ulong blockSize;
        ulong expected = BlockSizeFor(layout);
        bool expectedSmall = SizeClasses.IsSmall(layout.Size, layout.Align);
        if (entry != 0 && (entry & 1) == 0)
        {
            var slab = (Slab*)entry;
            ulong offset = address - (ulong)slab->Start;
            if (offset % slab->ObjectSize != 0 || offset / slab->ObjectSize >= (ulong)slab->Capacity)
            {
                ThrowNotABlock(address);
            }

            ulong bit = (address - slab->RegionStart) >> GranuleShift;
            blockSize = slab->ObjectSize;
            if ((slab->Bits[bit >> 6] & (1UL << (int)(bit & 63))) == 0)
            {
                ThrowNotAllocated(address, blockSize);
            }

            if (!expectedSmall || SizeClasses.IndexOf(layout.Size, layout.Align) != slab->ClassIndex)
            {
                ThrowWrongLayout(address, layout, expected, blockSize);
            }

            return entry;
        }

        if (entry != 0 && (address & ((1UL << PageShift) - 1)) == 0)
        {
            blockSize = (ulong)entry >> 1;
            if (expectedSmall || expected != blockSize)
            {
                ThrowWrongLayout(address, layout, expected, blockSize);
            }

            return entry;
        }

        // Not an object of a slab nor a large block: a free buddy block reads as a double free, anything else as no block.
        if ((address & 15) == 0 && _buddy.StartsFreeBlock(address))
        {
            ThrowHelper.ThrowInvalidOperation($"Cannot free {ThrowHelper.Hex(address)}: the memory there is not allocated (a double free, or a free block never handed out).");
        }

        ThrowNotABlock(address);
        return 0;
    }

    [System.Diagnostics.CodeAnalysis.DoesNotReturn]
    internal static void ThrowNotABlock(ulong address)
        => ThrowHelper.ThrowArgument($"Cannot free {ThrowHelper.Hex(address)}: it is not the start of a block of this heap (an interior or never-allocated address).", "ptr");

    [System.Diagnostics.CodeAnalysis.DoesNotReturn]
    internal static void ThrowNotAllocated(ulong address, ulong blockSize)
        => ThrowHelper.ThrowInvalidOperation($"Cannot free {ThrowHelper.Hex(address)}: the block of {blockSize} bytes there is not allocated (a double free, or a free block never handed out).");

    [System.Diagnostics.CodeAnalysis.DoesNotReturn]
    internal static void ThrowWrongLayout(ulong address, Layout layout, ulong expected, ulong blockSize)
        => ThrowHelper.ThrowArgument($"Cannot free {ThrowHelper.Hex(address)} with {layout}: that layout maps to a block of {expected} bytes, but the block there has {blockSize} bytes.", "layout");

    /// <summary>
    /// Resizes a block. When the new size maps to the same class (or large length) the block stays where it is;
    /// otherwise a new block is allocated, the bytes copied, and the old block freed.
    /// </summary>
    /// <param name="ptr">A live block of this heap.</param>
    /// <param name="layout">Its current layout.</param>
    /// <param name="newSize">The new size in bytes.</param>
    /// <returns>The block's address; <see langword="null"/> when it had to move and no block was free (the old block stays live).</returns>
    /// <exception cref="ArgumentException">As for <see cref="Deallocate"/>, or <paramref name="newSize"/> overflows with the alignment.</exception>
    /// <exception cref="InvalidOperationException">As for <see cref="Deallocate"/>.</exception>
    /// <exception cref="ObjectDisposedException">The heap was disposed.</exception>
    public void* Reallocate(void* ptr, Layout layout, nuint newSize)
    {
        ThrowIfDisposed();
        var newLayout = new Layout(newSize, layout.Align);
        CheckLiveBlock(ptr, layout, out _);
        bool sameSmall = SizeClasses.IsSmall(layout.Size, layout.Align) && SizeClasses.IsSmall(newSize, layout.Align)
            && SizeClasses.IndexOf(layout.Size, layout.Align) == SizeClasses.IndexOf(newSize, layout.Align);
        bool sameLarge = !SizeClasses.IsSmall(layout.Size, layout.Align) && !SizeClasses.IsSmall(newSize, layout.Align)
            && LargeLength(layout.Size) == LargeLength(newSize);
        if (sameSmall || sameLarge)
        {
            _userBytes = _userBytes - Math.Min(_userBytes, layout.Size) + newSize;
            return ptr;
        }

        void* moved = Allocate(newLayout);
        if (moved != null)
        {
            Buffer.MemoryCopy(ptr, moved, newSize, Math.Min(layout.Size, newSize));
            Deallocate(ptr, layout);
        }

        return moved;
    }

    /// <summary>A snapshot of the heap's accounting.</summary>
    /// <remarks>Costs O(free buddy blocks); not for hot paths. <see cref="HeapStats.AllocatedBytes"/> counts objects at their
    /// class size and large blocks at their kept length; <see cref="HeapStats.CachedBytes"/> is the bytes of slabs not in
    /// live objects (free objects, slab tails, empty slabs), part of <see cref="HeapStats.FreeBytes"/>;
    /// <see cref="HeapStats.FreeBlocksByOrder"/> and <see cref="HeapStats.LargestFreeBlock"/> are the buddy engine's.</remarks>
    public HeapStats Stats
    {
        get
        {
            ThrowIfDisposed();
            HeapStats buddy = _buddy.Stats;
            return buddy with
            {
                UserBytes = _userBytes,
                AllocatedBytes = _allocatedBytes,
                FreeBytes = buddy.TotalBytes - _allocatedBytes,
                CachedBytes = _slabBytes - _slabObjectBytes,
                MetadataBytes = buddy.MetadataBytes + MetadataBytes(),
                LiveBlocks = _liveBlocks,
                Allocations = _allocations,
                FailedAllocations = _failedAllocations,
            };
        }
    }

    /// <summary>Number of slabs the heap holds now (with live objects or kept empty).</summary>
    public long SlabCount => _slabs;

    private ulong MetadataBytes()
    {
        ulong bytes = (ulong)_slabs * (ulong)sizeof(Slab);
        foreach (SlabRegion region in _regions)
        {
            bytes += region.MetadataBytes;
        }

        return bytes;
    }

    /// <summary>Frees the metadata and any region the heap owns (see <see cref="Create"/>). Later calls throw <see cref="ObjectDisposedException"/>.</summary>
    /// <remarks>Calling it more than once is harmless. Memory added with <see cref="AddRegion"/> stays the caller's.</remarks>
    public void Dispose()
    {
        if (_disposed)
        {
            return;
        }

        _disposed = true;
        for (int index = 0; index < SizeClasses.Count; index++)
        {
            _classes[index] = default;
        }

        foreach (SlabRegion region in _regions)
        {
            // Every slab's pages point to its descriptor; free each descriptor once, at its first page.
            nint previous = 0;
            for (ulong page = 0; page < region.PageCount; page++)
            {
                nint entry = region.Pages[page];
                if (entry != 0 && (entry & 1) == 0 && entry != previous)
                {
                    NativeMemory.Free((void*)entry);
                }

                previous = entry;
            }

            region.Free();
        }

        _regions = [];
        _buddy.Dispose();
        Regions.DisposeOwned(_ownedRegions);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private void ThrowIfDisposed()
    {
        if (_disposed)
        {
            ThrowHelper.ThrowObjectDisposed(this);
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void PushFront(SizeClass* sizeClass, Slab* slab)
    {
        Slab* head = sizeClass->Head;
        slab->Next = head;
        slab->Prev = null;
        if (head != null)
        {
            head->Prev = slab;
        }

        sizeClass->Head = slab;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Unlink(SizeClass* sizeClass, Slab* slab)
    {
        if (slab->Prev != null)
        {
            slab->Prev->Next = slab->Next;
        }
        else
        {
            sizeClass->Head = slab->Next;
        }

        if (slab->Next != null)
        {
            slab->Next->Prev = slab->Prev;
        }

        slab->Next = null;
        slab->Prev = null;
    }

    private ref SlabRegion RegionOf(ulong address) => ref Regions.Of(_regions, address, ref _lastRegion);

    /// <summary>A free object's link, in its first word.</summary>
    internal struct FreeObject
    {
        public FreeObject* Next;
    }

    /// <summary>One slab's descriptor, in native memory outside the slab.</summary>
    internal struct Slab
    {
        public byte* Start;
        public FreeObject* Free;
        public Slab* Next;
        public Slab* Prev;
        public ulong* Bits;
        public ulong RegionStart;
        public uint ObjectSize;
        public uint Reciprocal;
        public int Capacity;
        public int Used;
        public int ClassIndex;
        public int Shift;
    }

    /// <summary>One size class: its slabs with free objects (the first serves), and how many of them are empty.</summary>
    internal struct SizeClass
    {
        public Slab* Head;
        public int EmptySlabs;

        /// <summary>Slabs the class has made so far: its next slab's size grows with it (<see cref="SizeClasses.SlabShiftFor"/>).</summary>
        public int SlabsMade;
    }

    /// <summary>
    /// A buddy block for a new slab of class <paramref name="index"/> after <paramref name="slabCount"/> slabs of the
    /// class (see <see cref="SizeClasses.SlabShiftFor"/>): of the preferred size (<see cref="SizeClasses.SlabShiftFor"/>), else the largest smaller one down to the
    /// class's minimum; null when none can be had. <paramref name="shift"/> is log2 of the block's size.
    /// </summary>
    internal static void* TakeSlabBlock(BuddyHeap buddy, int index, int slabCount, out int shift)
    {
        shift = SizeClasses.SlabShiftFor(index, slabCount);
        for (int min = SizeClasses.MinSlabShift(index); shift >= min; shift--)
        {
            void* block = buddy.Allocate(new Layout((nuint)1 << shift, (nuint)1 << shift));
            if (block != null)
            {
                return block;
            }
        }

        return null;
    }

    /// <summary>Links <paramref name="capacity"/> objects of <paramref name="objectSize"/> bytes from <paramref name="block"/>
    /// into a free list through their first word, in address order so the slab hands them out from its start; returns the
    /// first. <see cref="SlabHeap"/> links a new slab whole, the size-class tier about 4 KiB of it at a time.</summary>
    internal static void* LinkObjects(void* block, int capacity, uint objectSize)
    {
        void* next = null;
        for (int i = capacity - 1; i >= 0; i--)
        {
            var item = (void**)((byte*)block + ((nuint)i * objectSize));
            *item = next;
            next = item;
        }

        return next;
    }

    /// <summary>Points the page-map entries of the slab of 2^<paramref name="shift"/> bytes at <paramref name="block"/> to <paramref name="entry"/>.</summary>
    internal static void MapSlabPages(nint* pages, ulong firstPage, void* block, int shift, nint entry)
        => new Span<nint>(pages + (((ulong)block >> PageShift) - firstPage), 1 << (shift - PageShift)).Fill(entry);

    /// <summary>
    /// A zeroed page map for the region [<paramref name="start"/>, <paramref name="end"/>): one entry per 1 KiB page, 0
    /// (not a slab), a slab's descriptor, or a large block's tagged length; both slab heaps' regions keep one.
    /// </summary>
    internal static nint* NewPageMap(ulong start, ulong end, out ulong firstPage, out ulong pageCount)
    {
        firstPage = start >> PageShift;
        pageCount = ((end - 1) >> PageShift) - firstPage + 1;
        return (nint*)NativeMemory.AllocZeroed((nuint)pageCount, (nuint)sizeof(nint));
    }

    /// <summary>One region's page map (one entry per 1 KiB page) and allocation bitmap (one bit per 16-byte granule).</summary>
    internal readonly struct SlabRegion : IRegion
    {
        public SlabRegion(ulong start, ulong end)
        {
            Start = start;
            End = end;
            Pages = NewPageMap(start, end, out ulong firstPage, out ulong pageCount);
            FirstPage = firstPage;
            PageCount = pageCount;
            BitWords = (((end - start) >> GranuleShift) + 63) >> 6;
            Bits = (ulong*)NativeMemory.AllocZeroed((nuint)BitWords, sizeof(ulong));
        }

        public ulong Start { get; }

        public ulong End { get; }

        public ulong FirstPage { get; }

        public ulong PageCount { get; }

        public nint* Pages { get; }

        public ulong BitWords { get; }

        public ulong* Bits { get; }

        public ulong MetadataBytes => (PageCount * (ulong)sizeof(nint)) + (BitWords * sizeof(ulong));

        public void Free()
        {
            NativeMemory.Free(Pages);
            NativeMemory.Free(Bits);
        }
    }
}
