using System.Diagnostics;
using BuddySystem.Cli.Commands;

namespace BuddySystem.Tests.Reliability;

/// <summary>
/// Death tests in the manner of glibc's and Scudo's: a child process (the <c>buddy</c> CLI's hidden <c>crash-test</c>
/// command) commits a memory error on a hardened heap with the default corruption handler and must die of SIGABRT
/// (exit code 134 on Linux) after printing the <see cref="HeapCorruptionException.Prefix"/> message.
/// </summary>
public class DeathTests
{
    private static (int ExitCode, string Output) RunCrashTest(string which)
    {
        string cli = Path.Combine(AppContext.BaseDirectory, "buddy.dll");
        Assert.True(File.Exists(cli), $"{cli} should be copied next to the tests");
        var start = new ProcessStartInfo("bash")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };

        // No core file from the intended abort (ulimit), and no .NET crash dump either.
        start.ArgumentList.Add("-c");
        start.ArgumentList.Add("ulimit -c 0; exec dotnet \"$0\" crash-test \"$1\"");
        start.ArgumentList.Add(cli);
        start.ArgumentList.Add(which);
        start.Environment["DOTNET_DbgEnableMiniDump"] = "0";
        using Process child = Process.Start(start)!;
        Task<string> stdout = child.StandardOutput.ReadToEndAsync();
        Task<string> stderr = child.StandardError.ReadToEndAsync();
        Assert.True(child.WaitForExit(60_000), "the child did not finish");
        return (child.ExitCode, stdout.Result + stderr.Result);
    }

    [LinuxTheory]
    [InlineData("write-after-free", "write after free")]
    [InlineData("overflow", "overflow")]
    public void CrashTest_MemoryError_DiesWithSigabrtAndPrefix(string which, string what)
    {
        var (exitCode, output) = RunCrashTest(which);
        Assert.True(exitCode == 134, $"exit code {exitCode}, output:\n{output}");
        Assert.Contains(HeapCorruptionException.Prefix + what, output, StringComparison.Ordinal);
        Assert.DoesNotContain("was not detected", output, StringComparison.Ordinal);
    }

    [LinuxFact]
    public void CrashTest_Leak_ReportsTheBlockAndItsStack()
    {
        var (exitCode, output) = RunCrashTest("leak");
        Assert.Equal(0, exitCode);
        Assert.Contains("1 blocks (128 bytes) still live", output, StringComparison.Ordinal);
        Assert.Contains(nameof(CrashTestCommand), output, StringComparison.Ordinal);
    }
}
