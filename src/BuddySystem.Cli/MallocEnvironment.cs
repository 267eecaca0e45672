using System.Collections;
using BuddySystem.Cli.Commands;

namespace BuddySystem.Cli;

/// <summary>
/// The variables libbuddymalloc.so reads (<c>src/BuddySystem.Malloc</c>: <c>ProcessHeap</c>, <c>Exports</c> and the C
/// loader) and the values each takes. The library reads them inside <c>malloc</c>, where it cannot say anything: a limit it
/// cannot parse, or 0, falls back to the 64 GiB default, and a flag is on for any value but <c>0</c> (the loader warns
/// about those at load, one line each). So <c>buddy run</c> checks its environment, which the program inherits, before it
/// starts the program, and refuses what the loader would warn about, a limit below 1 MiB and an unknown name too. An empty
/// value is unset, for the library as here.
/// </summary>
internal static class MallocEnvironment
{
    /// <summary>The prefix of every variable of the library; any other name with it is a typo.</summary>
    public const string Prefix = "BUDDY_MALLOC_";

    /// <summary>The heap's limit (<c>ProcessHeap.Initialize</c>): a size with units, see <see cref="HeapRange.MallocLimit"/>.</summary>
    public const string Limit = "BUDDY_MALLOC_LIMIT";

    /// <summary>Hardened mode (the loader's <c>hardened_slow</c>): 1 on, 0 off.</summary>
    public const string Harden = "BUDDY_MALLOC_HARDEN";

    /// <summary>The report at exit (<c>Exports.WantsReport</c>): 1 on, 0 off.</summary>
    public const string Stats = "BUDDY_MALLOC_STATS";

    /// <summary>The heap snapshot file at exit (<c>ProcessHeap.MapVariable</c>): a path in a folder that exists, <c>%p</c>
    /// replaced by the process id.</summary>
    public const string Map = "BUDDY_MALLOC_MAP";

    private static readonly string[] s_names = [Limit, Harden, Stats, Map];

    /// <summary>Null when every <c>BUDDY_MALLOC_*</c> variable of <paramref name="environment"/> has a value the library
    /// takes; otherwise the line that names the first that does not, and what it takes.</summary>
    public static string? Problem(IDictionary environment)
    {
        foreach (DictionaryEntry entry in environment)
        {
            if (entry.Key is not string name || !name.StartsWith(Prefix, StringComparison.Ordinal))
            {
                continue;
            }

            string value = entry.Value as string ?? string.Empty;
            string? problem = name switch
            {
                Limit => value.Length == 0 || (ByteSize.TryParse(value, out ByteSize size) && HeapRange.MallocLimit.Contains(size.Bytes))
                    ? null
                    : $"must be {HeapRange.MallocLimit.Rule}, {HeapRange.MallocLimit.Examples} (unset: 64 GiB)",
                Harden or Stats => value is "0" or "1" or "" ? null : "must be 1 (on) or 0 (off)",
                Map => value.Length == 0 || Directory.Exists(Path.GetDirectoryName(Path.GetFullPath(value)))
                    ? null
                    : $"names a file in {Path.GetDirectoryName(Path.GetFullPath(value))}, a folder that does not exist",
                _ => $"is not a variable of libbuddymalloc.so (it reads {string.Join(", ", s_names)})",
            };
            if (problem is not null)
            {
                return s_names.Contains(name) ? $"{name}={value} {problem}." : $"{name} {problem}.";
            }
        }

        return null;
    }
}
