using System.Runtime.InteropServices;

namespace BuddySystem.Cli.Bench;

/// <summary>Describes the machine and runtime for reports: the CPU model from <c>/proc/cpuinfo</c>, cores, OS.</summary>
internal static class BenchMachine
{
    /// <summary>"AMD EPYC 7B13, 2 cores, Debian GNU/Linux 12 (X64)".</summary>
    public static string Describe()
    {
        string cpu = "unknown CPU";
        try
        {
            string? line = File.Exists("/proc/cpuinfo")
                ? File.ReadLines("/proc/cpuinfo").FirstOrDefault(l => l.StartsWith("model name", StringComparison.Ordinal))
                : null;
            if (line is not null)
            {
                cpu = line[(line.IndexOf(':', StringComparison.Ordinal) + 1)..].Trim();
            }
        }
        catch (IOException)
        {
            // /proc may be unreadable in a sandbox: the report still names cores and OS.
        }

        return $"{cpu}, {Environment.ProcessorCount} cores, {RuntimeInformation.OSDescription} ({RuntimeInformation.OSArchitecture})";
    }

    /// <summary>The load averages over 1, 5 and 15 minutes from <c>/proc/loadavg</c> ("1.02 0.98 0.41"), or "unknown": on
    /// this shared machine a figure means little without the load it was measured under.</summary>
    public static string Load
    {
        get
        {
            try
            {
                string[] fields = File.ReadAllText("/proc/loadavg").Split(' ');
                return fields.Length >= 3 ? string.Join(' ', fields[..3]) : "unknown";
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                return "unknown";
            }
        }
    }

    /// <summary>".NET 10.0.0".</summary>
    public static string Runtime => RuntimeInformation.FrameworkDescription;
}
