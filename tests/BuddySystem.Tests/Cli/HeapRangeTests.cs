using System.CommandLine;
using BuddySystem.Cli;
using BuddySystem.Cli.Commands;
using BuddySystem.Cli.Text;

namespace BuddySystem.Tests;

/// <summary>
/// Each command's <c>--heap</c> range is stated once (<see cref="HeapRange"/>): the help, the parse error, the README and
/// the commands that share a range agree (issue 32: map said "from 16 B", the README "from 64 B", replay "a power of two
/// from 4 KiB", and <c>--heap 3KiB</c> drew a map of a trace that replay refused).
/// </summary>
public class HeapRangeTests
{
    public static TheoryData<string, string> CommandsAndRanges => new()
    {
        { "map", nameof(HeapRange.Trace) },
        { "explore", nameof(HeapRange.Trace) },
        { "replay", nameof(HeapRange.Trace) },
        { "soak", nameof(HeapRange.Engine) },
        { "stress", nameof(HeapRange.Engine) },
        { "shm soak", nameof(HeapRange.Shared) },
    };

    private static HeapRange Range(string name) => name switch
    {
        nameof(HeapRange.Trace) => HeapRange.Trace,
        nameof(HeapRange.Engine) => HeapRange.Engine,
        _ => HeapRange.Shared,
    };

    private static Command Create(string command) => command switch
    {
        "map" => MapCommand.Create(),
        "explore" => ExploreCommand.Create(),
        "replay" => ReplayCommand.Create(),
        "soak" => SoakCommand.Create(),
        "stress" => StressCommand.Create(),
        _ => ShmSoakCommand.Create(),
    };

    [Theory]
    [MemberData(nameof(CommandsAndRanges))]
    public void HeapOption_HelpAndErrorSayTheRange(string command, string range)
    {
        HeapRange heap = Range(range);
        Option option = Create(command).Options.Single(o => o.Name == "--heap");
        var error = new StringWriter();

        int exit = Program.Run([.. command.Split(' '), "--heap", "3KiB"], error);

        Assert.Contains($"({heap.Rule}, {heap.Examples})", option.Description, StringComparison.Ordinal);
        Assert.Equal(2, exit);
        Assert.Contains($"--heap '3KiB' must be {heap.Rule}, {heap.Examples}.", error.ToString(), StringComparison.Ordinal);
    }

    [Theory]
    [MemberData(nameof(CommandsAndRanges))]
    public void Readme_StatesEachCommandsRange(string command, string range)
    {
        string readme = File.ReadAllText(RepositoryFiles.Path("README.md"));
        string row = readme.Split('\n').Single(line => line.StartsWith('|') && line.Split('|')[1].Contains($"`{command}`", StringComparison.Ordinal));

        Assert.StartsWith(Range(range).Rule, row.Split('|')[2].Trim(), StringComparison.Ordinal);
        if (range == nameof(HeapRange.Trace))
        {
            Assert.Contains($"with `-a buddy-tree` (`map`, `explore`) {HeapRange.Tree.Rule}", row, StringComparison.Ordinal);
        }
    }

    [Theory]
    [InlineData("3KiB")]
    [InlineData("4KiB")]
    [InlineData("96KiB")]
    [InlineData("1GiB")]
    [InlineData("2GiB")]
    [InlineData("16")]
    public void TraceCommands_TakeTheSameSizes(string size)
    {
        string trace = RepositoryFiles.Path("samples", "bash.trace.gz");
        bool map = MapCommand.Create().Parse(["--trace", trace, "--heap", size]).Errors.Count == 0;
        bool explore = ExploreCommand.Create().Parse([trace, "--heap", size]).Errors.Count == 0;
        bool replay = ReplayCommand.Create().Parse([trace, "--heap", size]).Errors.Count == 0;

        Assert.Equal(map, replay);
        Assert.Equal(map, explore);
    }

    [Theory]
    [InlineData("explore", "{trace}", "-a", "buddy-tree", "--heap", "1GiB")]
    [InlineData("map", "--trace", "{trace}", "-a", "buddy-tree", "--heap", "256MiB")]
    public void BuddyTreeView_HeapAboveItsRange_OneCleanLine(params string[] args)
    {
        string trace = RepositoryFiles.Path("samples", "bash.trace.gz");
        var error = new StringWriter();

        int exit = Program.Run([.. args.Select(a => a == "{trace}" ? trace : a)], error);

        string text = error.ToString();
        Assert.Equal(2, exit);
        Assert.Single(text.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.Contains($"with -a buddy-tree must be {HeapRange.Tree.Rule}", text, StringComparison.Ordinal);
        Assert.DoesNotContain("Parameter", text, StringComparison.Ordinal);
        Assert.DoesNotContain("larger block", text, StringComparison.Ordinal);
    }

    [Fact]
    public void ShmSoak_HeapZero_ExamplesAreInsideTheRange()
    {
        var error = new StringWriter();

        Assert.Equal(2, Program.Run(["shm", "soak", "--heap", "0"], error));
        Assert.Equal("buddy shm soak: --heap '0' must be from 1 MiB to 1 TiB, e.g. 1MiB, 32MiB or 1GiB. (see --help)", error.ToString().TrimEnd());
    }

    [Fact]
    public void Examples_AreAllInsideTheirRange()
    {
        foreach (HeapRange range in new[] { HeapRange.Trace, HeapRange.Tree, HeapRange.Engine, HeapRange.Shared })
        {
            foreach (string example in range.Examples["e.g. ".Length..].Replace(" or ", ", ", StringComparison.Ordinal).Split(", "))
            {
                Assert.True(ByteSize.TryParse(example, out ByteSize size) && range.Contains(size.Bytes), $"{example} outside {range.Rule}");
            }
        }
    }
}
