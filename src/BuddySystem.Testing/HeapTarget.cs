using BuddySystem.Diagnostics;

namespace BuddySystem.Testing;

/// <summary>
/// A pointer allocator under test together with the checks the reliability workloads (soak, stress, fuzz) run on it.
/// The engines are registered by name in <see cref="EngineCatalog"/>, beside it, so every workload covers every engine.
/// </summary>
internal sealed unsafe class HeapTarget : IDisposable
{
    private readonly IDisposable _owner;
    private readonly Action _validate;
    private readonly Func<HeapStats> _stats;
    private readonly Action<nint, nuint>? _addRegion;
    private DescribeAddress? _describe;
    private int _overhead;
    private Func<Layout, ulong>? _blockSize;
    private Func<Layout, ulong>? _blockAlignment;
    private Func<HeapSnapshot>? _snapshot;

    private HeapTarget(string name, IAllocator allocator, IDisposable owner, Action validate, Func<HeapStats> stats, Action<nint, nuint>? addRegion)
    {
        Name = name;
        Allocator = allocator;
        _owner = owner;
        _validate = validate;
        _stats = stats;
        _addRegion = addRegion;
    }

    /// <summary>The hardening a hardened engine under test runs: every check, corruption thrown rather than fatal.</summary>
    internal static HeapHardeningOptions ThrowingHardening { get; } = new()
    {
        CorruptionHandler = message => throw new HeapCorruptionException(message),
        ReportLeaksOnDispose = false,
    };

    internal string Name { get; }

    internal IAllocator Allocator { get; }

    /// <summary>Safe from many threads at once (stress runs only these): what the engine declares
    /// (<see cref="IAllocator.IsThreadSafe"/>), so the catalog, stress and the pool agree.</summary>
    internal bool IsThreadSafe => Allocator.IsThreadSafe;

    /// <summary>The engine implements the pointer heap contract itself (regions, dispose, misuse exceptions naming the address).</summary>
    internal bool IsPointerHeap { get; private init; }

    internal bool CanAddRegion => _addRegion != null;

    /// <summary>Whether <see cref="Snapshot"/> works: the engine's blocks can be listed at their addresses (<c>buddy map</c>).</summary>
    internal bool CanSnapshot => _snapshot != null;

    /// <summary>
    /// The largest request (size and alignment) the engine serves as an object of a size-class slab; 0 for the buddy
    /// engines. A free object's bytes serve only its class (<see cref="ClassBoundFreeBytes"/>), so freeing one opens no
    /// free block, and on an exhausted heap other classes may still have room.
    /// </summary>
    internal ulong SlabObjectLimit { get; private init; }

    /// <summary>The engine's largest slab: every slab object lies inside one aligned chunk of this many bytes.</summary>
    internal ulong SlabBytes { get; private init; }

    /// <summary>An engine under test from its parts: the allocator, what disposes it, its <c>Validate()</c> and stats.</summary>
    /// <param name="name">The engine's id, for messages.</param>
    /// <param name="allocator">The engine.</param>
    /// <param name="owner">Disposed with the target.</param>
    /// <param name="validate">Throws when the engine's invariants are broken.</param>
    /// <param name="stats">The engine's accounting.</param>
    /// <param name="pointerHeap">Implements the pointer heap contract itself (the misuse matrix runs only these).</param>
    /// <param name="addRegion">Adds memory to the engine; null when it cannot take more regions.</param>
    /// <param name="blockSize">The block size the engine hands out for a layout; null for the buddy rule (<see cref="BuddyHeap.BlockSizeOf"/>).</param>
    /// <param name="blockAlignment">The alignment the engine promises for a layout; null for the buddy rule (aligned to the block size).</param>
    internal static HeapTarget Of(string name, IAllocator allocator, IDisposable owner, Action validate, Func<HeapStats> stats, bool pointerHeap, Action<nint, nuint>? addRegion = null, Func<Layout, ulong>? blockSize = null, Func<Layout, ulong>? blockAlignment = null)
        => new(name, allocator, owner, validate, stats, addRegion) { IsPointerHeap = pointerHeap, _blockSize = blockSize, _blockAlignment = blockAlignment };

    /// <summary>A <see cref="SlabHeap"/> under test: objects of size classes and exact large blocks, aligned as
    /// <see cref="SlabHeap.BlockAlignmentFor"/> promises.</summary>
    internal static HeapTarget Of(string name, SlabHeap heap)
        => new(name, heap, heap, heap.Validate, () => heap.Stats, (start, size) => heap.AddRegion((void*)start, size))
        {
            _blockSize = SlabHeap.BlockSizeFor,
            _blockAlignment = SlabHeap.BlockAlignmentFor,
            SlabObjectLimit = SlabHeap.MaxSmallSize,
            SlabBytes = SlabHeap.MaxSlabSize,
            IsPointerHeap = true,
            _snapshot = () => HeapSnapshot.Of(heap),
        };

    /// <summary>A <see cref="BuddyHeap"/> under test (a hardened one adds its request overhead to every block).</summary>
    internal static HeapTarget Of(string name, BuddyHeap heap)
        => new(name, heap, heap, heap.Validate, () => heap.Stats, (start, size) => heap.AddRegion((void*)start, size))
        {
            _overhead = heap.RequestOverhead,
            IsPointerHeap = true,
            _snapshot = () => HeapSnapshot.Of(heap),
        };

    /// <summary>A <see cref="LockedHeap"/> under test.</summary>
    internal static HeapTarget Of(string name, LockedHeap heap)
        => new(name, heap, heap, heap.Validate, () => heap.Stats, (start, size) => heap.AddRegion((void*)start, size))
        {
            IsPointerHeap = true,
            _snapshot = () => HeapSnapshot.Of(heap),
        };

    /// <summary>A <see cref="ConcurrentHeap"/> under test: its blocks and alignments are the heap's own rule
    /// (<see cref="ConcurrentHeap.BlockSizeFor"/>: slab objects with the size-class tier, buddy blocks with a hardened heap's
    /// overhead otherwise).</summary>
    internal static HeapTarget Of(string name, ConcurrentHeap heap)
        => new(name, heap, heap, heap.Validate, () => heap.Stats, (start, size) => heap.AddRegion((void*)start, size))
        {
            _overhead = heap.RequestOverhead,
            _blockSize = heap.BlockSizeFor,
            _blockAlignment = heap.BlockAlignmentFor,
            SlabObjectLimit = heap.HasSizeClassTier ? SlabHeap.MaxSmallSize : 0UL,
            SlabBytes = heap.HasSizeClassTier ? SlabHeap.MaxSlabSize : 0UL,
            IsPointerHeap = true,
            _snapshot = () => HeapSnapshot.Of(heap),
        };

    /// <summary>The frame allocator behind <see cref="FrameAllocatorHeap"/> under test.</summary>
    internal static HeapTarget Of(string name, FrameAllocatorHeap frames)
        => new(name, frames, frames, frames.Frames.Validate, () => frames.Stats, addRegion: null) { _describe = frames.Describe };

    /// <summary>The offset allocator behind <see cref="BuddyTreeHeap"/> under test; misuse messages name offsets.</summary>
    internal static HeapTarget Of(string name, BuddyTreeHeap tree)
        => new(name, tree, tree, tree.Tree.Validate, () => tree.Stats, addRegion: null) { _describe = address => ThrowHelperHex(tree.OffsetOf(address)) };

    /// <summary>How the engine's misuse messages name <paramref name="address"/>: the address, or the tree's offset.</summary>
    internal string Describe(void* address) => _describe?.Invoke(address) ?? ThrowHelperHex((ulong)address);

    private static string ThrowHelperHex(ulong value) => "0x" + value.ToString("x", System.Globalization.CultureInfo.InvariantCulture);

    /// <summary>The layout that fills a whole block of <paramref name="blockSize"/> bytes (hardened heaps need 16 of them).</summary>
    internal Layout WholeBlock(ulong blockSize) => new((nuint)blockSize - (nuint)_overhead, 1);

    /// <summary>The block size this engine hands out for <paramref name="layout"/> (hardened heaps add 16 bytes first).</summary>
    internal ulong BlockSize(Layout layout) => _blockSize?.Invoke(layout) ?? BuddyHeap.BlockSizeOf(_overhead == 0 ? layout : new Layout(layout.Size + (nuint)_overhead, layout.Align));

    /// <summary>The alignment the engine promises for every block of <paramref name="layout"/>: the buddy engines align a
    /// block to its size; a slab engine says (a 320-byte object is 64-aligned).</summary>
    internal ulong BlockAlignment(Layout layout) => _blockAlignment?.Invoke(layout) ?? BlockSize(layout);

    /// <summary>Whether <paramref name="layout"/> is served as an object of a slab (see <see cref="SlabObjectLimit"/>).</summary>
    internal bool IsSlabObject(Layout layout) => layout.Size <= SlabObjectLimit && layout.Align <= SlabObjectLimit;

    /// <summary>
    /// The model's granularity: every block of at most <paramref name="largest"/> lies wholly inside one aligned chunk of
    /// the returned size (its own buddy block, or its slab), so while fewer such blocks are live than the heap has whole
    /// chunks, some chunk is wholly free and the next request must succeed.
    /// </summary>
    internal ulong PlacementChunk(Layout largest) => IsSlabObject(largest) ? SlabBytes : BlockAlignment(largest);

    /// <summary>Free bytes that serve only the size class they were cut for (free objects of slabs, counted in
    /// <see cref="HeapStats.CachedBytes"/>); 0 for the buddy engines, whose caches go back when an allocation would fail.</summary>
    internal ulong ClassBoundFreeBytes(HeapStats stats) => SlabObjectLimit == 0 ? 0 : stats.CachedBytes;

    internal void Validate() => _validate();

    /// <summary>The engine's blocks now, at their addresses (<see cref="HeapSnapshot"/>).</summary>
    /// <exception cref="NotSupportedException">The engine cannot list its blocks that way (<see cref="CanSnapshot"/>).</exception>
    internal HeapSnapshot Snapshot() => _snapshot?.Invoke() ?? throw new NotSupportedException($"{Name} cannot list its blocks.");

    internal HeapStats Stats => _stats();

    /// <summary>Adds [start, start + size) to the engine; the caller keeps the memory alive until disposal.</summary>
    internal void AddRegion(nint start, nuint size)
    {
        if (_addRegion == null)
        {
            throw new NotSupportedException($"{Name} cannot take more regions.");
        }

        _addRegion(start, size);
    }

    public void Dispose() => _owner.Dispose();

    private delegate string DescribeAddress(void* address);
}
