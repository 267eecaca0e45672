namespace BuddySystem.Internals;

/// <summary>The tier's native structures: free objects, slab descriptors, per-thread class lists and regions.</summary>
internal sealed unsafe partial class SlabTier
{
    /// <summary>A free object's link, in its first word.</summary>
    internal struct FreeObject
    {
        /// <summary>The link of the owner's local list.</summary>
        public FreeObject* Next;

        /// <summary>The link of the slab's thread-free list (objects are at least 16 bytes).</summary>
        public FreeObject* RemoteNext;
    }

    /// <summary>One slab's descriptor, in native memory outside the slab; reused, never freed before Dispose.</summary>
    internal struct Slab
    {
        public byte* Start;

        /// <summary>The owner's free list.</summary>
        public FreeObject* Free;

        /// <summary>Other threads' frees: a stack pushed by compare-exchange, taken whole by exchange.</summary>
        public nint ThreadFree;

        public Slab* Next;
        public Slab* Prev;

        /// <summary>The region's state bytes, indexed by address / 16.</summary>
        public byte* StateBase;

        /// <summary>The region's remote marks, indexed by address / 16 (null on a single-threaded heap).</summary>
        public byte* MarkBase;

        /// <summary>The owning thread's id (<see cref="ThreadSlabs.Id"/>); 0 when abandoned. Changed under the lock.</summary>
        public nint Owner;

        public uint ObjectSize;
        public int Capacity;

        /// <summary>Objects from the slab's start that have been put on its free list so far; the rest were never handed
        /// out and are free without being on any list (the list is extended as the slab is used, not built whole).</summary>
        public int Linked;

        /// <summary>Objects not on the local list (live ones and those on the thread-free list).</summary>
        public int Used;

        public int ClassIndex;
        public int Shift;

        /// <summary>1 while the slab is on its owner's full list; set under the lock with a full fence.</summary>
        public int Full;

        /// <summary>1 while the slab is on its owner's stack of full slabs it freed into (<see cref="ClassSlabs.Reclaimable"/>).</summary>
        public int Reclaimable;

        /// <summary>The next slab on that stack.</summary>
        public Slab* NextReclaimable;
    }

    /// <summary>One class of one thread: its slabs with free objects (the first serves), its full slabs, and how many of
    /// the former are empty.</summary>
    internal struct ClassSlabs
    {
        public Slab* Head;
        public Slab* FullHead;
        public int EmptySlabs;

        /// <summary>Slabs of the class on this thread's lists: its next slab's size grows with them
        /// (<see cref="SizeClasses.SlabShiftFor"/>), so a class in heavy use gets large slabs and one in light use keeps small ones.</summary>
        public int SlabsHeld;

        /// <summary>Slabs the class has made so far (a single-threaded heap's slabs grow with it instead).</summary>
        public int SlabsMade;

        /// <summary>Full slabs the owner has freed into since the last locked call on the class: a stack only the owner
        /// changes (or the lock's holder, with the owner paused or exited), linked through <see cref="Slab.NextReclaimable"/>.</summary>
        public Slab* Reclaimable;
    }

    /// <summary>One region's page map (one entry per 1 KiB page: 0, a slab's descriptor, or on the first page of a large
    /// block cut to its length that length shifted left once with the low bit set), state bytes (one per 16-byte
    /// granule: 0, or 1 + the class of the live object starting there; written by the slab's owner only) and, on a heap
    /// with an owner per thread, remote marks (one per granule: set by another thread's free with one exchange, see
    /// <see cref="RemoteMark"/>).</summary>
    internal readonly struct Region : IRegion
    {
        public Region(ulong start, ulong end, bool withMarks)
        {
            Start = start;
            End = end;
            FirstPage = start >> PageShift;
            PageCount = ((end - 1) >> PageShift) - FirstPage + 1;
            Pages = (nint*)NativeMemory.AllocZeroed((nuint)PageCount, (nuint)sizeof(nint));
            StateCount = (end - start) >> GranuleShift;
            States = (byte*)NativeMemory.AllocZeroed((nuint)StateCount);
            Marks = withMarks ? RemoteMark.AllocateTable((nuint)StateCount) : null;
        }

        public ulong Start { get; }

        public ulong End { get; }

        public ulong FirstPage { get; }

        public ulong PageCount { get; }

        public nint* Pages { get; }

        public ulong StateCount { get; }

        public byte* States { get; }

        /// <summary>The remote marks, one per granule as <see cref="States"/>; null on a single-threaded heap.</summary>
        public byte* Marks { get; }

        /// <summary><see cref="States"/> shifted so that it is indexed by address / 16 directly.</summary>
        public byte* StateBase => States - (Start >> GranuleShift);

        /// <summary><see cref="Marks"/> shifted so that it is indexed by address / 16 directly.</summary>
        public byte* MarkBase => Marks == null ? null : Marks - (Start >> GranuleShift);

        public ulong MetadataBytes => (PageCount * (ulong)sizeof(nint)) + (Marks == null ? StateCount : 2 * StateCount);

        public void Free()
        {
            NativeMemory.Free(Pages);
            NativeMemory.Free(States);
            if (Marks != null)
            {
                RemoteMark.FreeTable(Marks, (nuint)StateCount);
            }
        }
    }
}
