using System.Runtime.InteropServices;

namespace BuddySystem.Malloc;

/// <summary>The few libc calls of the process heap, bound at link time (DirectPInvoke): no dlopen inside malloc.</summary>
internal static unsafe partial class Libc
{
    internal const int ProtRead = 1;
    internal const int ProtWrite = 2;
    internal const int MapPrivate = 0x02;
    internal const int MapAnonymous = 0x20;
    internal const int MapNoReserve = 0x4000;
    internal const int MadvDontNeed = 4;

    [LibraryImport("libc", EntryPoint = "mmap")]
    internal static partial void* Mmap(void* address, nuint length, int protection, int flags, int fd, nint offset);

    [LibraryImport("libc", EntryPoint = "munmap")]
    internal static partial int Munmap(void* address, nuint length);

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
