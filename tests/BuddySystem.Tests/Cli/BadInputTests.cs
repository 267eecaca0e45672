using System.CommandLine;
using BuddySystem.Cli;
using BuddySystem.Cli.Commands;

namespace BuddySystem.Tests;

/// <summary>The crashes issue 12 found: each bad value must end in exit code 2, not a stack trace.</summary>
public sealed class BadInputTests : IDisposable
{
    private readonly string _directory = Directory.CreateTempSubdirectory("buddy-bad-input-").FullName;

    public void Dispose() => Directory.Delete(_directory, recursive: true);

    [Fact]
    public void Soak_UnknownEngine_ExitsTwo()
        => Assert.Equal(2, SoakCommand.Create().Parse(["--engine", "nope", "--operations", "10"]).Invoke());

    [Fact]
    public void Stress_NegativeHeap_ExitsTwo()
        => Assert.Equal(2, StressCommand.Create().Parse(["--heap-mib", "-1"]).Invoke());

    [Theory]
    [InlineData("a 1 18446744073709551615 2\n")]
    [InlineData("a 1 8 8\nf 2\n")]
    [InlineData("a 1 8 8\nr 2 16\n")]
    public void Explore_AbsurdOrDeadIds_ExitTwo(string text)
    {
        string trace = Path.Combine(_directory, "t.trace");
        File.WriteAllText(trace, text);
        Assert.Equal(2, ExploreCommand.Create().Parse([trace, "--out", Path.Combine(_directory, "e.html")]).Invoke());
    }

    [Theory]
    [InlineData("a 1 18446744073709551615 2\n")]
    [InlineData("a 1 8 8\nf 2\n")]
    public void Map_AbsurdOrDeadIds_ExitTwo(string text)
    {
        string trace = Path.Combine(_directory, "t.trace");
        File.WriteAllText(trace, text);
        Assert.Equal(2, MapCommand.Create().Parse(["--trace", trace, "--out", Path.Combine(_directory, "m.svg")]).Invoke());
    }

    [Theory]
    [InlineData("explore", "-a", "nope", "x.trace")]
    [InlineData("map", "--placement", "upside-down")]
    [InlineData("replay")]
    [InlineData("nosuchcommand")]
    [InlineData("demo", "--no-such-option")]
    public void Program_CommandLineThatDoesNotParse_OneLineOnStderrAndExitTwo(params string[] args)
    {
        var error = new StringWriter();

        Assert.Equal(2, Program.Run(args, error));
        string text = error.ToString();
        Assert.StartsWith("buddy", text, StringComparison.Ordinal);
        Assert.Single(text.Split('\n', StringSplitOptions.RemoveEmptyEntries));
    }
}
