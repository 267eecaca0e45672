using System.Runtime.InteropServices;

namespace BuddySystem.Cli.Bench;

/// <summary><c>native-memory</c>: <see cref="NativeMemory.Alloc(nuint)"/>/<see cref="NativeMemory.Free"/>, what C# code calls today.</summary>
internal readonly unsafe struct NativeMemoryAllocator : IBenchAllocator
{
    // NativeMemory.Alloc promises no alignment beyond malloc's; larger alignments use AlignedAlloc, which needs AlignedFree.
    private const nuint MallocAlign = 16;

    public static bool IsThreadSafe => true;

    public static bool IsArena => false;

    public nuint RegionStart => 0;

    public static NativeMemoryAllocator Create(nuint heapSize) => default;

    public nuint Allocate(nuint size, nuint align)
    {
        try
        {
            return (nuint)(align <= MallocAlign ? NativeMemory.Alloc(size) : NativeMemory.AlignedAlloc(size, align));
        }
        catch (OutOfMemoryException)
        {
            // NativeMemory throws where malloc returns null; the bench counts it as a failed allocation like the others.
            return 0;
        }
    }

    public void Free(nuint block, nuint size, nuint align)
    {
        if (align <= MallocAlign)
        {
            NativeMemory.Free((void*)block);
        }
        else
        {
            NativeMemory.AlignedFree((void*)block);
        }
    }

    public nuint Reallocate(nuint block, nuint size, nuint align, nuint newSize)
    {
        try
        {
            // A zero size could free the block on some C runtimes; ask for one byte so the block stays live either way.
            return (nuint)(align <= MallocAlign ? NativeMemory.Realloc((void*)block, Math.Max(newSize, 1)) : NativeMemory.AlignedRealloc((void*)block, newSize, align));
        }
        catch (OutOfMemoryException)
        {
            return 0;
        }
    }

    // NativeMemory does not say how much it set aside.
    public nuint BlockSize(nuint block, nuint size, nuint align) => 0;

    public void Dispose()
    {
    }
}
