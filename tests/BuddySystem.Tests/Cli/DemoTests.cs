using BuddySystem.Cli.Commands;

namespace BuddySystem.Tests;

public class DemoTests
{
    [Fact]
    public void Run_TutorialTest_PrintsTheSixLinesAndSucceeds()
    {
        var output = new StringWriter();
        int exit = DemoCommand.Run(output);
        string[] lines = output.ToString().Split('\n', StringSplitOptions.TrimEntries);
        Assert.Equal(0, exit);
        Assert.Equal("heap_value assertion successfully!", lines[0]);
        Assert.Matches("^heap_value is at 0x[0-9a-f]+$", lines[1]);
        Assert.Equal("heap_value is in the heap region!", lines[2]);
        Assert.Equal("vec assertion successfully!", lines[3]);
        Assert.Matches("^vec is at 0x[0-9a-f]+$", lines[4]);
        Assert.Equal("vec is in the heap region!", lines[5]);
        Assert.Contains("8,388,608", output.ToString(), StringComparison.Ordinal);
    }
}
