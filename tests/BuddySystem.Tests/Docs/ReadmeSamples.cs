// The README's C# samples, line for line (ReadmeSampleTests holds each README block to its method here): each compiles
// as part of the test project, and the tests run them. The Kestrel sample lives in the AspNetCore test project.
using System.Buffers;
using System.IO.Pipelines;
using BuddySystem;
using BuddySystem.Buffers;
using BuddySystem.Collections;
using BuddySystem.Diagnostics;

namespace BuddySystem.Tests.Docs;

/// <summary>The README's C# samples as methods, each block's lines verbatim (its <c>using</c> directives are at the top of
/// this file).</summary>
internal static unsafe class ReadmeSamples
{
    /// <summary>README block 1.</summary>
    public static void QuickStart()
    {

        using var heap = ConcurrentHeap.Create(8 << 20);        // 8 MiB of native memory, the thread-safe default
        using (var value = new Box<int>(heap, 5))               // Rust's Box::new(5)
        using (var vec = new Vec<int>(heap))                    // Rust's Vec
        {
            for (int i = 0; i < 500; i++) vec.Push(i);
            Console.WriteLine($"{value.Value} {vec[499]}");
        }
        unsafe
        {
            void* block = heap.Allocate(new Layout(100, 8));    // GlobalAlloc::alloc: null when it cannot serve
            heap.Deallocate(block, new Layout(100, 8));         // GlobalAlloc::dealloc: misuse throws, heap unchanged
        }
        Console.WriteLine(heap.Stats.FreeBlocksByOrder.Count);  // the /proc/buddyinfo row
    }

    /// <summary>README block 2.</summary>
    public static void ConcurrentHeapCalls()
    {
        using var heap = ConcurrentHeap.Create(32 << 20);                       // or new BuddyHeap(BuddyHeapOptions.Eager)
        void* block = heap.Allocate(new Layout(16, 8));                         // pops this thread's slab of 16-byte objects: no lock
        heap.Deallocate(block, new Layout(16, 8));                              // any thread; misuse throws, naming the address
        heap.Trim();                                                            // every thread's empty slabs and cached blocks
    }

    /// <summary>README block 3.</summary>
    public static void SlabHeapCalls()
    {
        using var heap = SlabHeap.Create(32 << 20);
        void* item = heap.Allocate(new Layout(100, 8));          // a 112-byte object of a slab
        heap.Deallocate(item, new Layout(100, 8));               // a push on its slab's free list
        ulong reserved = SlabHeap.BlockSizeFor(new Layout(9000, 8));   // 9216: a large block keeps 9 KiB of its 16 KiB
    }

    /// <summary>README block 4.</summary>
    public static void BuddyTreeOffsets()
    {
        var tree = new BuddyTree(capacity: 1UL << 30, minBlock: 4096);       // 1 GiB of device memory, 4 KiB pages
        ulong vertices = tree.Allocate(200_000);                               // a 256 KiB block, aligned to its size
        bool ok = tree.TryAllocate(64 << 10, align: 1 << 16, out ulong uniforms);
        tree.Free(vertices);                                                   // no size needed
        Console.WriteLine(tree.Stats.LargestFreeBlock);                        // 512 MiB
    }

    /// <summary>README block 5.</summary>
    public static void SharedHeapTwoProcesses()
    {
        // process A (run again, it opens the heap it made before)
        string path = "/dev/shm/cache.heap";
        using var heap = File.Exists(path) ? SharedHeap.Open(path) : SharedHeap.Create(path, 64 << 20);
        ulong message = heap.AllocateInto(100, 16, slot: heap.RootOffset);      // the offset lands in the root's first slot
        "hello"u8.CopyTo(new Span<byte>(heap.Pointer(message), 100));
        // process B
        using var same = SharedHeap.Open(path);
        ulong found = *(ulong*)same.Pointer(same.RootOffset);                   // the same offset, mapped at B's own address
        same.FreeFrom(same.RootOffset);                                          // frees it and zeroes the slot, crash-atomic
    }

    /// <summary>README block 6.</summary>
    public static void Collections()
    {
        using var heap = LockedHeap.Create(1 << 20);
        using var shared = new Arc<long>(heap, 0);              // Rust's Arc: atomic count, clone per thread
        Parallel.For(0, 4, _ => { using var mine = shared.Clone(); unsafe { Interlocked.Increment(ref *mine.Pointer); } });
        using var one = new Rc<int>(heap, 7);                   // Rust's Rc: single-thread count; last Dispose frees
        using var map = new HashMap<int, long>(heap);           // Rust's HashMap: open addressing, GC-free foreach
        map.TryAdd(1, 10); map[2] = 20;
        foreach (var (key, value) in map) Console.WriteLine($"{key} {value}");
        using var bytes = new ByteBuffer(heap);                 // Vec<u8> as an IBufferWriter<byte>
        using (var json = new System.Text.Json.Utf8JsonWriter(bytes)) json.WriteNumberValue(shared.Value);
    }

    /// <summary>README block 7.</summary>
    public static void PipelinesPool()
    {
        using var heap = ConcurrentHeap.Create(16 << 20);
        using var pool = new BuddyMemoryPool(heap);
        var pipe = new Pipe(new PipeOptions(pool: pool));       // every segment comes from the buddy heap
        using IMemoryOwner<byte> buffer = pool.Rent(5000);      // an 8192-byte block
    }

    /// <summary>README block 9.</summary>
    public static void Metrics(ConcurrentHeap heap, BuddyMemoryPool pool)
    {
        using IDisposable registration = BuddyMetrics.Register(heap, "frames");
        using IDisposable buffers = BuddyMetrics.Register(pool, "buffers");
    }

    /// <summary>README block 10.</summary>
    public static void Snapshot(ConcurrentHeap heap)
    {
        HeapSnapshot snapshot = HeapSnapshot.Of(heap);     // BuddyHeap, LockedHeap, ConcurrentHeap (slabs as their objects), SlabHeap or BuddyTree
        foreach (HeapBlock block in snapshot.Blocks) { }    // offset, order, size, state (free, allocated, cached)
        IReadOnlyList<long> buddyinfo = snapshot.FreeBlocksByOrder;
        double u = snapshot.UnusableFreeIndex(3);           // Linux's unusable_index for order 3, as a ratio
        double f = snapshot.FragmentationIndex(3);          // Linux's extfrag_index: -1 when an order-3 block is free
    }

    /// <summary>README block 11.</summary>
    public static void Hardening()
    {
        var options = BuddyHeapOptions.Default with { Hardening = HeapHardeningOptions.Default };
        using var heap = BuddyHeap.Create(1 << 20, options);    // poisons freed memory, canaries every block, reports leaks
    }
}
