using BuddySystem.Cli;
using BuddySystem.Cli.Commands;

namespace BuddySystem.Tests.Cli;

/// <summary><c>buddy shm bench</c> (N processes on one heap) and <c>buddy shm stat</c>'s lock line and file check.</summary>
[System.Runtime.Versioning.SupportedOSPlatform("linux")]
public sealed class ShmBenchCommandTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("buddy-shm-bench-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [LinuxFact]
    public void Bench_OneAndTwoProcesses_PrintsARowEachWithNoFailures()
    {
        var output = new StringWriter();
        var error = new StringWriter();

        Assert.Equal(0, ShmBenchCommand.Run(output, error, [1, 2], ops: 20_000, runs: 1, boost: false));

        string[] rows = output.ToString().Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        Assert.Equal(string.Empty, error.ToString());
        Assert.Contains(rows, row => row.StartsWith("1 ", StringComparison.Ordinal) && row.EndsWith(" 0", StringComparison.Ordinal));
        Assert.Contains(rows, row => row.StartsWith("2 ", StringComparison.Ordinal) && row.EndsWith(" 0", StringComparison.Ordinal));
    }

    [Fact]
    public void Bench_ProcessCountOutOfRange_OneLineOnStderrAndExitTwo()
    {
        var error = new StringWriter();

        Assert.Equal(2, Program.Run(["shm", "bench", "--processes", "0"], error));

        string[] lines = error.ToString().Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Single(lines);
        Assert.Contains("--processes must be from 1 to 16", lines[0], StringComparison.Ordinal);
    }

    [LinuxFact]
    public void Stat_FreshHeap_ReportsTheLockFree()
    {
        string path = Path.Combine(_dir, "h");
        SharedHeap.Create(path, 1 << 16).Dispose();
        var output = new StringWriter();

        Assert.Equal(0, ShmStatCommand.Run(path, output, TextWriter.Null));

        Assert.Contains("lock                  free (before this open); 0 holder deaths", output.ToString(), StringComparison.Ordinal);
    }

    [LinuxFact]
    public void Stat_FileOthersCanWrite_ExitsTwoUnlessAllowed()
    {
        string path = Path.Combine(_dir, "h");
        SharedHeap.Create(path, 1 << 16).Dispose();
        File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.OtherWrite);
        var error = new StringWriter();

        Assert.Equal(2, Program.Run(["shm", "stat", path], error));
        Assert.Contains("can be written by other users", error.ToString(), StringComparison.Ordinal);
        Assert.Equal(0, Program.Run(["shm", "stat", "--allow-other-writers", path], TextWriter.Null));
    }
}
