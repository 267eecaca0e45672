using System.Runtime.InteropServices;

namespace BuddySystem.Cli.Bench;

/// <summary>A peer's shared library, loaded with <see cref="NativeLibrary"/> and its functions looked up by name.</summary>
internal static class NativeExports
{
    /// <summary>Loads <paramref name="library"/> and finds <paramref name="names"/>, in order.</summary>
    /// <param name="library">The file to load.</param>
    /// <param name="missing">What to say when the file does not load (how to install it).</param>
    /// <param name="names">The functions wanted.</param>
    /// <param name="exports">Their addresses, in the order of <paramref name="names"/>.</param>
    /// <param name="unavailable">Why the library cannot be used, or null.</param>
    /// <returns>Whether every function was found.</returns>
    public static bool TryLoad(string library, string missing, string[] names, out nint[] exports, out string? unavailable)
    {
        exports = new nint[names.Length];
        if (!NativeLibrary.TryLoad(library, out nint handle))
        {
            unavailable = missing;
            return false;
        }

        for (int i = 0; i < names.Length; i++)
        {
            if (!NativeLibrary.TryGetExport(handle, names[i], out exports[i]))
            {
                unavailable = $"{library} lacks {names[i]}";
                return false;
            }
        }

        unavailable = null;
        return true;
    }
}
