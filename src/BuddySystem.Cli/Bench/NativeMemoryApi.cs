using System.Runtime.InteropServices;

namespace BuddySystem.Cli.Bench;

/// <summary><see cref="NativeMemory"/>, what C# code calls today: the <c>native-memory</c> peer.</summary>
internal readonly unsafe struct NativeMemoryApi : IMallocApi
{
    private enum Call
    {
        Alloc,
        AlignedAlloc,
        Realloc,
        AlignedRealloc,
    }

    public static string? Unavailable => null;

    public static void* Malloc(nuint size) => OrNull(Call.Alloc, null, size, 0);

    public static void* AlignedAlloc(nuint size, nuint align) => OrNull(Call.AlignedAlloc, null, size, align);

    // A block of AlignedAlloc must go back through AlignedFree.
    public static void Free(void* block, bool aligned)
    {
        if (aligned)
        {
            NativeMemory.AlignedFree(block);
        }
        else
        {
            NativeMemory.Free(block);
        }
    }

    public static void* Realloc(void* block, nuint newSize) => OrNull(Call.Realloc, block, newSize, 0);

    public static void* AlignedRealloc(void* block, nuint size, nuint newSize, nuint align) => OrNull(Call.AlignedRealloc, block, newSize, align);

    // NativeMemory does not say how much it set aside.
    public static nuint UsableSize(void* block) => 0;

    // NativeMemory throws where malloc returns null; the bench counts it as a failed allocation like the others.
    private static void* OrNull(Call call, void* block, nuint size, nuint align)
    {
        try
        {
            return call switch
            {
                Call.Alloc => NativeMemory.Alloc(size),
                Call.AlignedAlloc => NativeMemory.AlignedAlloc(size, align),
                Call.Realloc => NativeMemory.Realloc(block, size),
                _ => NativeMemory.AlignedRealloc(block, size, align),
            };
        }
        catch (OutOfMemoryException)
        {
            return null;
        }
    }
}
