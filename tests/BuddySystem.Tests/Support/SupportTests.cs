using BuddySystem.Tests.Malloc;

namespace BuddySystem.Tests;

/// <summary>The test kit's own promises (docs/reliability.md, "What the test suite promises"): a failure on another thread
/// fails its test on the test's thread, and a missing program skips its test with the reason.</summary>
public class SupportTests
{
    [Fact]
    public void TestThread_FailedAssertOnIt_IsRethrownByJoin()
    {
        TestThread thread = TestThread.Start(() => Assert.Equal(1, 2));
        Assert.Throws<Xunit.Sdk.EqualException>(() => thread.Join());
    }

    [Fact]
    public void TestThread_SeveralFailed_AllAreReported()
    {
        TestThread[] threads = [TestThread.Start(() => throw new InvalidOperationException("one")), TestThread.Start(() => throw new ArgumentException("two"))];
        var error = Assert.Throws<AggregateException>(() => TestThread.JoinAll(threads));
        Assert.Equal(2, error.InnerExceptions.Count);
    }

    [Fact]
    public void TestThread_StillRunningAtTheDeadline_ThrowsTimeout()
    {
        using var release = new ManualResetEventSlim();
        TestThread thread = TestThread.Start(release.Wait);
        Assert.Throws<TimeoutException>(() => thread.Join(TimeSpan.FromMilliseconds(50)));
        release.Set();
        thread.Join();
    }

    [Fact]
    public void ToolFact_MissingProgram_IsSkippedNamingIt()
    {
        var attribute = new ToolFactAttribute("sh", "no-such-program-buddy");
        Assert.NotNull(attribute.Skip);
        Assert.Contains("no-such-program-buddy", attribute.Skip, StringComparison.Ordinal);
        Assert.DoesNotContain("sh,", attribute.Skip, StringComparison.Ordinal);
    }

    [LinuxFact]
    public void ToolFact_ProgramsPresent_Runs()
    {
        Assert.Null(new ToolFactAttribute("sh", "/bin/sh").Skip);
        Assert.Null(new ToolTheoryAttribute("sh").Skip);
    }

    [LinuxFact]
    public void ProgramData_ARow_IsSkippedOnlyWhenItsProgramIsMissing()
    {
        for (int row = 0; row < MallocTests.Programs.Length; row++)
        {
            var data = new ProgramDataAttribute(row);
            Assert.Equal(Tools.IsPresent(MallocTests.Programs[row].Program), data.Skip is null);
            Assert.Equal(MallocTests.Programs[row].Program, Assert.Single(data.GetData(null!))[0]);
        }
    }
}
