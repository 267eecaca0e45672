namespace BuddySystem.Internals;

internal sealed unsafe partial class SlabTier
{
    /// <summary>
    /// One thread's slabs of one heap and that thread's share of the counters. The owner changes slabs' local lists inside
    /// its busy window (lock-free) or under the heap's lock; the lists of slabs change only under the lock; any other thread
    /// touches them only under the lock, with the owner paused or exited.
    /// </summary>
    internal sealed class ThreadSlabs : PausableOwner
    {
        /// <summary>The owning thread; null for the one owner of a single-threaded heap, which any thread may use and
        /// which never exits.</summary>
        public readonly Thread? Thread;

        /// <summary>Per size class: the slab lists, in a pinned array so the fast paths index them without bounds checks.</summary>
        public readonly ClassSlabs* Classes;

        /// <summary>What slabs store as their owner: a handle to this object, so the lock's holder can find it from a slab.</summary>
        public readonly nint Id;

        /// <summary>The region the thread freed into last: bounds, page map and state bytes, so the fast free needs no lookup.</summary>
        public ulong HotStart;
        public ulong HotLength;
        public ulong HotFirstPage;
        public nint* HotPages;
        public byte* HotStateBase;
        public byte* HotMarkBase;

        /// <summary>The owning thread's stack (lowest address and size; size 0 when unknown): an address on the calling
        /// thread's stack inside it identifies the owner without a thread-static read (see
        /// <see cref="CallingThreadSlabs"/>).</summary>
        public readonly ulong StackLow;
        public readonly ulong StackSize;

        private readonly byte[] _classMemory;
        private GCHandle _handle;

        public ThreadSlabs(SlabTier heap, Thread? thread)
        {
            HeapKey = heap._threadKey;
            Thread = thread;
            Classes = CacheLines.AllocatePinned<ClassSlabs>(SizeClasses.Count, out _classMemory);
            // Weak: the heap's list of owners keeps every owner a slab can name alive, and a heap dropped without Dispose
            // must not leave its owners rooted by their own handles.
            _handle = GCHandle.Alloc(this, GCHandleType.Weak);
            Id = GCHandle.ToIntPtr(_handle);
            if (thread != null && Libc.TryGetCallingThreadStack(out ulong low, out ulong size))
            {
                StackLow = low;
                StackSize = size;
            }
        }

        /// <summary>The key of the heap these slabs belong to (<see cref="_threadKey"/>); null once retired. A key, not the
        /// heap: the thread-static that finds these slabs must not keep a heap its owner dropped alive.</summary>
        public object? HeapKey { get; private set; }

        /// <summary>Whether the owning thread has exited (its slabs are then abandoned).</summary>
        public bool HasExited => Thread is { IsAlive: false };

        /// <summary>The owner a slab names, under the lock (a slab never names a retired owner).</summary>
        public static ThreadSlabs? FromId(nint id) => GCHandle.FromIntPtr(id).Target as ThreadSlabs;

        /// <summary>Makes <paramref name="region"/> the one the fast free checks first; by the owner only.</summary>
        public void SetHotRegion(in Region region)
        {
            HotLength = 0;
            HotStart = region.Start;
            HotFirstPage = region.FirstPage;
            HotPages = region.Pages;
            HotStateBase = region.StateBase;
            HotMarkBase = region.MarkBase;
            HotLength = region.End - region.Start;
        }

        /// <summary>Forgets the heap (its owner exited, or the heap was disposed): later calls take the locked path.</summary>
        public void Retire()
        {
            HeapKey = null;
            HotLength = 0;
            new Span<ClassSlabs>(Classes, SizeClasses.Count).Clear();
            if (_handle.IsAllocated)
            {
                _handle.Free();
            }
        }
    }
}
