using System.Runtime.InteropServices;

namespace BuddySystem.Malloc;

/// <summary>The few libc calls of the process heap that the engine does not make, bound at link time (DirectPInvoke): no
/// dlopen inside malloc.</summary>
/// <remarks>The reserve's <c>mmap</c> and <c>munmap</c> are the engine's (<see cref="Internals.Libc"/>, which
/// <see cref="SharedHeap"/> maps its file with): DirectPInvoke binds every call to "libc" in the image, whichever assembly
/// declares it.</remarks>
internal static unsafe partial class Libc
{
    internal const int MadvDontNeed = 4;         // MADV_DONTNEED

    [LibraryImport("libc", EntryPoint = "madvise")]
    internal static partial int Madvise(void* address, nuint length, int advice);

    [LibraryImport("libc", EntryPoint = "write")]
    internal static partial nint Write(int fd, byte* buffer, nuint count);

    [LibraryImport("libc", EntryPoint = "getenv")]
    internal static partial byte* Getenv(byte* name);

    [LibraryImport("libc", EntryPoint = "abort")]
    internal static partial void Abort();

    /// <summary>An environment variable read without the runtime's environment copy (which allocates at start-up).</summary>
    internal static string? Environment(string name)
    {
        byte* text = stackalloc byte[name.Length + 1];
        for (int i = 0; i < name.Length; i++)
        {
            text[i] = (byte)name[i];
        }

        text[name.Length] = 0;
        byte* value = Getenv(text);
        return value == null ? null : Marshal.PtrToStringUTF8((nint)value);
    }

    /// <summary>Writes <paramref name="text"/> to standard error in one write call (no buffering: the process may abort next).</summary>
    internal static void WriteError(string text)
    {
        byte[] bytes = System.Text.Encoding.UTF8.GetBytes(text);
        fixed (byte* start = bytes)
        {
            nuint done = 0;
            while (done < (nuint)bytes.Length)
            {
                nint written = Write(2, start + done, (nuint)bytes.Length - done);
                if (written <= 0)
                {
                    return;
                }

                done += (nuint)written;
            }
        }
    }
}
