using System.Collections.Concurrent;

namespace BuddySystem.Tests;

/// <summary>The programs tests run (gcc, perl, sqlite3, git...): found on PATH or not, and why a test that needs a missing
/// one is skipped.</summary>
internal static class Tools
{
    private static readonly ConcurrentDictionary<string, bool> s_found = new(StringComparer.Ordinal);

    /// <summary>Whether <paramref name="tool"/> runs here: an absolute path that exists, or a name found as a file in a
    /// directory of PATH.</summary>
    public static bool IsPresent(string tool) => s_found.GetOrAdd(tool, static name =>
    {
        if (Path.IsPathRooted(name))
        {
            return File.Exists(name);
        }

        string[] directories = (Environment.GetEnvironmentVariable("PATH") ?? string.Empty).Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries);
        return directories.Any(directory => File.Exists(Path.Combine(directory, name)));
    });

    /// <summary>Why a test that runs <paramref name="tools"/> (with <c>LD_PRELOAD</c>, so on Linux) cannot run here, or null
    /// when it can.</summary>
    public static string? MissingReason(IEnumerable<string> tools)
    {
        if (!OperatingSystem.IsLinux())
        {
            return LinuxOnly.Reason;
        }

        string[] missing = [.. tools.Where(tool => !IsPresent(tool))];
        return missing.Length == 0
            ? null
            : $"Needs {string.Join(", ", missing)}, not found on PATH here: install {(missing.Length == 1 ? "it" : "them")} (.ci/run does) to run this test.";
    }
}

/// <summary>A fact that runs programs (on Linux, often under <c>LD_PRELOAD</c>); skipped, naming the missing ones, when any
/// is not installed.</summary>
public sealed class ToolFactAttribute : FactAttribute
{
    /// <summary>A fact that needs <paramref name="tools"/> (names looked up on PATH, or absolute paths).</summary>
    public ToolFactAttribute(params string[] tools)
    {
        Programs = tools;
        Skip = BuddySystem.Tests.Tools.MissingReason(tools);
    }

    /// <summary>The programs the test runs.</summary>
    public IReadOnlyList<string> Programs { get; }
}

/// <summary>A theory that runs programs; skipped, naming the missing ones, when any is not installed.</summary>
public sealed class ToolTheoryAttribute : TheoryAttribute
{
    /// <summary>A theory that needs <paramref name="tools"/> (names looked up on PATH, or absolute paths).</summary>
    public ToolTheoryAttribute(params string[] tools)
    {
        Programs = tools;
        Skip = BuddySystem.Tests.Tools.MissingReason(tools);
    }

    /// <summary>The programs the test runs.</summary>
    public IReadOnlyList<string> Programs { get; }
}
