using System.Runtime.InteropServices;

namespace BuddySystem.Cli.Bench;

/// <summary>mimalloc's <c>mi_malloc</c> family from <c>libmimalloc.so.2</c> (Debian package <c>libmimalloc2.0</c>).</summary>
/// <remarks>Optional: when the library is missing <see cref="Unavailable"/> says so and the bench goes on without it.</remarks>
internal static unsafe class Mimalloc
{
    /// <summary>The file loaded.</summary>
    public const string LibraryName = "libmimalloc.so.2";

    /// <summary>Why mimalloc cannot be used here, or null when it loaded.</summary>
    public static readonly string? Unavailable;

    public static readonly delegate* unmanaged[SuppressGCTransition]<nuint, void*> Malloc;
    public static readonly delegate* unmanaged[SuppressGCTransition]<void*, void> Free;
    public static readonly delegate* unmanaged[SuppressGCTransition]<void*, nuint, void*> Realloc;
    public static readonly delegate* unmanaged[SuppressGCTransition]<nuint, nuint, void*> MallocAligned;
    public static readonly delegate* unmanaged[SuppressGCTransition]<void*, nuint, nuint, void*> ReallocAligned;
    public static readonly delegate* unmanaged[SuppressGCTransition]<void*, nuint> UsableSize;

#pragma warning disable CA1810 // the fields are function pointers resolved together; a static constructor keeps that in one place
    static Mimalloc()
#pragma warning restore CA1810
    {
        if (!NativeLibrary.TryLoad(LibraryName, out nint library))
        {
            Unavailable = $"{LibraryName} not found (install it: apt-get install libmimalloc2.0)";
            return;
        }

        try
        {
            Malloc = (delegate* unmanaged[SuppressGCTransition]<nuint, void*>)NativeLibrary.GetExport(library, "mi_malloc");
            Free = (delegate* unmanaged[SuppressGCTransition]<void*, void>)NativeLibrary.GetExport(library, "mi_free");
            Realloc = (delegate* unmanaged[SuppressGCTransition]<void*, nuint, void*>)NativeLibrary.GetExport(library, "mi_realloc");
            MallocAligned = (delegate* unmanaged[SuppressGCTransition]<nuint, nuint, void*>)NativeLibrary.GetExport(library, "mi_malloc_aligned");
            ReallocAligned = (delegate* unmanaged[SuppressGCTransition]<void*, nuint, nuint, void*>)NativeLibrary.GetExport(library, "mi_realloc_aligned");
            UsableSize = (delegate* unmanaged[SuppressGCTransition]<void*, nuint>)NativeLibrary.GetExport(library, "mi_usable_size");
        }
        catch (EntryPointNotFoundException e)
        {
            Unavailable = $"{LibraryName} lacks a function: {e.Message}";
        }
    }
}
