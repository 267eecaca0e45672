namespace BuddySystem.Internals;

/// <summary>
/// Memory for one thread's hot state that no other thread's hot state may share a cache line with: a thread's slab lists
/// and block caches are written on every call, and when two threads' lists sat on one line (pinned arrays made one after
/// another, slab descriptors from adjacent <c>malloc</c> chunks), each call of one thread took the line from the other.
/// </summary>
internal static unsafe class CacheLines
{
    /// <summary>Two 64-byte lines: the adjacent-line prefetcher moves lines in pairs, so padding by one line is not enough.</summary>
    internal const int Span = 128;

    /// <summary>
    /// <paramref name="count"/> zeroed elements of <typeparamref name="T"/>, starting on a <see cref="Span"/> boundary with at
    /// least <see cref="Span"/> bytes of padding on each side, inside a pinned array kept alive through
    /// <paramref name="owner"/>.
    /// </summary>
    internal static T* AllocatePinned<T>(int count, out byte[] owner)
        where T : unmanaged
    {
        owner = GC.AllocateArray<byte>((count * sizeof(T)) + (3 * Span), pinned: true);
        nuint start = (nuint)Unsafe.AsPointer(ref MemoryMarshal.GetArrayDataReference(owner));
        return (T*)((start + (2 * Span) - 1) & ~(nuint)(Span - 1));
    }

    /// <summary>One zeroed <typeparamref name="T"/> of native memory alone on its own lines; free it with <see cref="Free"/>.</summary>
    internal static T* AllocateNative<T>()
        where T : unmanaged
    {
        nuint size = ((nuint)sizeof(T) + Span - 1) & ~(nuint)(Span - 1);
        void* memory = NativeMemory.AlignedAlloc(size, Span);
        NativeMemory.Clear(memory, size);
        return (T*)memory;
    }

    /// <summary>Frees memory of <see cref="AllocateNative{T}"/>.</summary>
    internal static void Free(void* memory) => NativeMemory.AlignedFree(memory);
}
