namespace BuddySystem.Testing;

/// <summary>
/// A pointer allocator under test together with the checks the reliability workloads (soak, stress, fuzz) run on it:
/// one place that knows how to build each engine by name, so every workload covers every engine.
/// </summary>
internal sealed unsafe class HeapTarget : IDisposable
{
    private readonly IDisposable _owner;
    private readonly Action _validate;
    private readonly Func<HeapStats> _stats;
    private readonly Action<nint, nuint>? _addRegion;
    private DescribeAddress? _describe;
    private int _overhead;

    private HeapTarget(string name, IAllocator allocator, IDisposable owner, Action validate, Func<HeapStats> stats, Action<nint, nuint>? addRegion, bool threadSafe)
    {
        Name = name;
        Allocator = allocator;
        _owner = owner;
        _validate = validate;
        _stats = stats;
        _addRegion = addRegion;
        IsThreadSafe = threadSafe;
    }

    /// <summary>The engine names <see cref="Create"/> accepts.</summary>
    /// <remarks><c>buddy-heap</c> runs the default options (lazy caches), <c>buddy-heap-eager</c> the tutorial's algorithm;
    /// <c>buddy-tree</c> and <c>frame-allocator</c> are the offset and frame engines behind <see cref="BuddyTreeHeap"/>
    /// and <see cref="FrameAllocatorHeap"/>.</remarks>
    /// <c>buddy-heap-hardened</c> runs every check of <see cref="HeapHardeningOptions"/>, reporting corruption by throwing.
    internal static IReadOnlyList<string> Names { get; } = ["buddy-heap", "buddy-heap-eager", "buddy-heap-hardened", "locked-heap", "concurrent-heap", "buddy-tree", "frame-allocator"];

    /// <summary>The engines that implement the pointer heap contract themselves (regions, dispose, misuse exceptions).</summary>
    internal static IReadOnlyList<string> PointerHeapNames { get; } = ["buddy-heap", "buddy-heap-eager", "buddy-heap-hardened", "locked-heap", "concurrent-heap"];

    /// <summary>The hardening the <c>buddy-heap-hardened</c> engine runs: every check, corruption thrown rather than fatal.</summary>
    internal static HeapHardeningOptions ThrowingHardening { get; } = new()
    {
        CorruptionHandler = message => throw new HeapCorruptionException(message),
        ReportLeaksOnDispose = false,
    };

    /// <summary>The engine names that are safe from many threads (for <c>buddy stress</c>).</summary>
    internal static IReadOnlyList<string> ThreadSafeNames { get; } = ["locked-heap", "concurrent-heap"];

    internal string Name { get; }

    internal IAllocator Allocator { get; }

    internal bool IsThreadSafe { get; }

    internal bool CanAddRegion => _addRegion != null;

    /// <summary>Builds the engine called <paramref name="name"/> over a new native region of <paramref name="size"/> bytes.</summary>
    internal static HeapTarget Create(string name, nuint size) => name switch
    {
        "buddy-heap" => FromBuddyHeap(BuddyHeap.Create(size), name),
        "buddy-heap-eager" => FromBuddyHeap(BuddyHeap.Create(size, BuddyHeapOptions.Eager), name),
        "buddy-heap-hardened" => FromBuddyHeap(BuddyHeap.Create(size, BuddyHeapOptions.Default with { Hardening = ThrowingHardening }), name),
        "locked-heap" => FromLockedHeap(LockedHeap.Create(size)),
        "concurrent-heap" => FromConcurrentHeap(ConcurrentHeap.Create(size)),
        "buddy-tree" => FromBuddyTree(new BuddyTreeHeap(size)),
        "frame-allocator" => FromFrames(new FrameAllocatorHeap(size)),
        _ => throw new ArgumentException($"Unknown engine '{name}'; expected one of: {string.Join(", ", Names)}.", nameof(name)),
    };

    private static HeapTarget FromBuddyHeap(BuddyHeap heap, string name)
        => new(name, heap, heap, heap.Validate, () => heap.Stats, (start, size) => heap.AddRegion((void*)start, size), threadSafe: false)
        {
            _overhead = heap.RequestOverhead,
        };

    private static HeapTarget FromLockedHeap(LockedHeap heap)
        => new("locked-heap", heap, heap, heap.Validate, () => heap.Stats, (start, size) => heap.AddRegion((void*)start, size), threadSafe: true);

    private static HeapTarget FromConcurrentHeap(ConcurrentHeap heap)
        => new("concurrent-heap", heap, heap, heap.Validate, () => heap.Stats, (start, size) => heap.AddRegion((void*)start, size), threadSafe: true);

    private static HeapTarget FromFrames(FrameAllocatorHeap frames)
        => new("frame-allocator", frames, frames, frames.Frames.Validate, () => frames.Stats, addRegion: null, threadSafe: false) { _describe = frames.Describe };

    private static HeapTarget FromBuddyTree(BuddyTreeHeap tree)
        => new("buddy-tree", tree, tree, tree.Tree.Validate, () => tree.Stats, addRegion: null, threadSafe: false) { _describe = address => ThrowHelperHex(tree.OffsetOf(address)) };

    /// <summary>How the engine's misuse messages name <paramref name="address"/>: the address, or the tree's offset.</summary>
    internal string Describe(void* address) => _describe?.Invoke(address) ?? ThrowHelperHex((ulong)address);

    private static string ThrowHelperHex(ulong value) => "0x" + value.ToString("x", System.Globalization.CultureInfo.InvariantCulture);

    /// <summary>The layout that fills a whole block of <paramref name="blockSize"/> bytes (hardened heaps need 16 of them).</summary>
    internal Layout WholeBlock(ulong blockSize) => new((nuint)blockSize - (nuint)_overhead, 1);

    /// <summary>The block size this engine hands out for <paramref name="layout"/> (hardened heaps add 16 bytes first).</summary>
    internal ulong BlockSize(Layout layout) => BuddyHeap.BlockSizeOf(_overhead == 0 ? layout : new Layout(layout.Size + (nuint)_overhead, layout.Align));

    internal void Validate() => _validate();

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
