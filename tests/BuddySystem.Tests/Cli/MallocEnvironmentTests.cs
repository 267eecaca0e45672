using System.Collections;
using BuddySystem.Cli;
using BuddySystem.Cli.Commands;
using BuddySystem.Tests.Malloc;

namespace BuddySystem.Tests;

/// <summary>
/// <c>buddy run</c> refuses a <c>BUDDY_MALLOC_*</c> value the library would take without a word (issue 32:
/// <c>BUDDY_MALLOC_LIMIT=banana</c> or <c>0</c> fell back to 64 GiB). The variables are passed in, not set on this
/// process: tests running beside these start programs that inherit its environment.
/// </summary>
public class MallocEnvironmentTests
{
    [Theory]
    [InlineData("BUDDY_MALLOC_LIMIT", "banana", "BUDDY_MALLOC_LIMIT=banana must be from 1 MiB to 1 TiB")]
    [InlineData("BUDDY_MALLOC_LIMIT", "0", "BUDDY_MALLOC_LIMIT=0 must be from 1 MiB to 1 TiB")]
    [InlineData("BUDDY_MALLOC_LIMIT", "512", "BUDDY_MALLOC_LIMIT=512 must be")]
    [InlineData("BUDDY_MALLOC_LIMIT", "2TiB", "BUDDY_MALLOC_LIMIT=2TiB must be")]
    [InlineData("BUDDY_MALLOC_HARDEN", "yes", "BUDDY_MALLOC_HARDEN=yes must be 1 (on) or 0 (off)")]
    [InlineData("BUDDY_MALLOC_STATS", "2", "BUDDY_MALLOC_STATS=2 must be 1 (on) or 0 (off)")]
    [InlineData("BUDDY_MALLOC_MAP", "/nonexistent/dir/heap-%p.snapshot", "BUDDY_MALLOC_MAP=/nonexistent/dir/heap-%p.snapshot names a file in /nonexistent/dir, a folder that does not exist")]
    [InlineData("BUDDY_MALLOC_LIMT", "2GiB", "BUDDY_MALLOC_LIMT is not a variable of libbuddymalloc.so (it reads BUDDY_MALLOC_LIMIT,")]
    public void Run_BadVariable_RefusedBeforeTheProgramStarts(string name, string value, string expected)
    {
        var environment = new Hashtable { ["PATH"] = "/usr/bin", [name] = value };

        var error = Assert.Throws<BadInputException>(() => RunCommand.Run(["/bin/true"], stats: false, library: null, environment: environment));

        Assert.StartsWith(expected, error.Message, StringComparison.Ordinal);
        Assert.DoesNotContain('\n', error.Message);
    }

    [Theory]
    [InlineData("BUDDY_MALLOC_LIMIT", "2GiB")]
    [InlineData("BUDDY_MALLOC_LIMIT", "1048576")]
    [InlineData("BUDDY_MALLOC_HARDEN", "1")]
    [InlineData("BUDDY_MALLOC_HARDEN", "0")]
    [InlineData("BUDDY_MALLOC_STATS", "")]
    [InlineData("BUDDY_MALLOC_LIMIT", "")]
    [InlineData("BUDDY_MALLOC_MAP", "/tmp/heap-%p.snapshot")]
    [InlineData("BUDDY_MALLOCATOR", "x")] // not the prefix: not the library's
    public void Problem_GoodVariable_None(string name, string value)
        => Assert.Null(MallocEnvironment.Problem(new Hashtable { [name] = value }));

    [LinuxFact]
    public void BuddyRun_LimitBanana_OneLineExitTwo()
    {
        string dll = Path.Combine(AppContext.BaseDirectory, "buddy.dll");

        var result = MallocTests.Run("dotnet", [dll, "run", "--", "/bin/true"], Path.GetTempPath(), null, environment: ("BUDDY_MALLOC_LIMIT", "banana"));

        Assert.Equal(2, result.Exit);
        Assert.Equal($"buddy run: BUDDY_MALLOC_LIMIT=banana must be {HeapRange.MallocLimit.Rule}, {HeapRange.MallocLimit.Examples} (unset: 64 GiB).", result.Error.TrimEnd());
    }
}
