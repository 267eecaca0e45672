using System.Runtime.InteropServices;

namespace BuddySystem.Cli.Bench;

/// <summary>glibc's <c>malloc</c> family, loaded from <c>libc.so.6</c> with <see cref="NativeLibrary"/>.</summary>
/// <remarks>
/// Called through <c>delegate* unmanaged[SuppressGCTransition]</c>, as docs/benchmarks.md asks, so the call costs about what a
/// C caller pays and the comparison with the managed heaps is fair.
/// </remarks>
internal static unsafe class Libc
{
    /// <summary>Why libc cannot be used here, or null when it loaded.</summary>
    public static readonly string? Unavailable;

    public static readonly delegate* unmanaged[SuppressGCTransition]<nuint, void*> Malloc;
    public static readonly delegate* unmanaged[SuppressGCTransition]<void*, void> Free;
    public static readonly delegate* unmanaged[SuppressGCTransition]<void*, nuint, void*> Realloc;
    public static readonly delegate* unmanaged[SuppressGCTransition]<nuint, nuint, void*> AlignedAlloc;
    public static readonly delegate* unmanaged[SuppressGCTransition]<void*, nuint> UsableSize;

#pragma warning disable CA1810 // the fields are function pointers resolved together; a static constructor keeps that in one place
    static Libc()
#pragma warning restore CA1810
    {
        if (!NativeLibrary.TryLoad("libc.so.6", out nint library))
        {
            Unavailable = "libc.so.6 could not be loaded (not glibc Linux?)";
            return;
        }

        try
        {
            Malloc = (delegate* unmanaged[SuppressGCTransition]<nuint, void*>)NativeLibrary.GetExport(library, "malloc");
            Free = (delegate* unmanaged[SuppressGCTransition]<void*, void>)NativeLibrary.GetExport(library, "free");
            Realloc = (delegate* unmanaged[SuppressGCTransition]<void*, nuint, void*>)NativeLibrary.GetExport(library, "realloc");
            AlignedAlloc = (delegate* unmanaged[SuppressGCTransition]<nuint, nuint, void*>)NativeLibrary.GetExport(library, "aligned_alloc");
            UsableSize = (delegate* unmanaged[SuppressGCTransition]<void*, nuint>)NativeLibrary.GetExport(library, "malloc_usable_size");
        }
        catch (EntryPointNotFoundException e)
        {
            Unavailable = $"libc.so.6 lacks a malloc function: {e.Message}";
        }
    }
}
