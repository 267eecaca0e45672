using System.CommandLine;
using BuddySystem.Cli;
using BuddySystem.Cli.Commands;

namespace BuddySystem.Tests;

/// <summary>
/// Options checked before any work (issue 32): an output path whose folder is missing or whose extension is not the
/// format's fails while parsing, so the command's action never runs; an option the chosen case would ignore is refused
/// with one line and exit 2.
/// </summary>
public sealed class OptionChecksTests : IDisposable
{
    private readonly string _directory = Directory.CreateTempSubdirectory("buddy-option-checks-").FullName;

    public void Dispose() => Directory.Delete(_directory, recursive: true);

    private static string Sample => RepositoryFiles.Path("samples", "bash.trace.gz");

    public static TheoryData<string, string[], string> BadOutputs => new()
    {
        { "demo", ["--map", "/nonexistent/dir/d.svg"], "the folder /nonexistent/dir does not exist" },
        { "demo", ["--map", "d.gif"], "use a .svg or .png file name" },
        { "replay", ["{sample}", "--json", "/nonexistent/dir/r.json"], "the folder /nonexistent/dir does not exist" },
        { "replay", ["{sample}", "--json", "r.txt"], "use a .json file name" },
        { "replay", ["{sample}", "--markdown", "/nonexistent/dir/r.md"], "does not exist" },
        { "explore", ["--tutorial", "--out", "e.png"], "use a .html or .htm file name" },
        { "explore", ["--tutorial", "--out", "/nonexistent/dir/e.html"], "does not exist" },
        { "map", ["--out", "/nonexistent/dir/m.svg"], "does not exist" },
        { "bench", ["--quick", "--json", "/nonexistent/dir/b.json"], "does not exist" },
        { "bench", ["--plot", "b.svg"], "use a .png file name" },
        { "run", ["--map", "/nonexistent/dir/m.png", "--", "/bin/true"], "does not exist" },
        { "shm-soak", ["--file", "/nonexistent/dir/h"], "does not exist" },
    };

    [Theory]
    [MemberData(nameof(BadOutputs))]
    public void Parse_BadOutputPath_IsAParseErrorSoNothingRuns(string command, string[] args, string expected)
    {
        Command parser = command switch
        {
            "demo" => DemoCommand.Create(),
            "replay" => ReplayCommand.Create(),
            "explore" => ExploreCommand.Create(),
            "map" => MapCommand.Create(),
            "bench" => BenchCommand.Create(),
            "run" => RunCommand.Create(),
            _ => ShmSoakCommand.Create(),
        };

        ParseResult parsed = parser.Parse([.. args.Select(a => a == "{sample}" ? Sample : a)]);

        Assert.Contains(parsed.Errors, e => e.Message.Contains(expected, StringComparison.Ordinal));
    }

    [Fact]
    public void Program_DemoMapInMissingFolder_OneLineExitTwo()
    {
        var error = new StringWriter();

        Assert.Equal(2, Program.Run(["demo", "--map", "/nonexistent/dir/d.svg"], error));
        Assert.Equal("buddy demo: --map '/nonexistent/dir/d.svg': the folder /nonexistent/dir does not exist. (see --help)", error.ToString().TrimEnd());
    }

    [Fact]
    public void Parse_GoodOutputPaths_NoError()
    {
        Assert.Empty(ReplayCommand.Create().Parse([Sample, "--json", Path.Combine(_directory, "r.JSON"), "--markdown", Path.Combine(_directory, "r.md")]).Errors);
        Assert.Empty(ExploreCommand.Create().Parse(["--tutorial", "--out", Path.Combine(_directory, "e.htm")]).Errors);
        Assert.Empty(MapCommand.Create().Parse(["--out", "relative.png"]).Errors);
        Assert.Empty(ExploreCommand.Create().Parse(["--tutorial"]).Errors);
    }

    public static TheoryData<string[], string> IgnoredOptions => new()
    {
        { ["explore", "{sample}", "--tutorial"], "a trace does not go with --tutorial" },
        { ["explore", "--tutorial", "-a", "buddy-heap"], "--tutorial steps through a buddy-tree: -a buddy-heap" },
        { ["explore", "--tutorial", "--ops", "10"], "--ops does not go with --tutorial" },
        { ["explore", "--tutorial", "--heap", "64KiB"], "--heap does not go with --tutorial" },
        { ["explore", "--tutorial", "--eager"], "--eager does not go with --tutorial" },
        { ["explore", "{sample}", "-a", "buddy-tree", "--eager"], "--eager does not go with -a buddy-tree" },
        { ["explore", "{sample}", "--placement", "left-first"], "--placement does not go with -a buddy-heap" },
        { ["map", "--placement", "left-first"], "--placement does not go with -a buddy-heap" },
        { ["map", "--trace", "{sample}", "-a", "slab-heap", "--placement", "best-fit"], "--placement does not go with -a slab-heap" },
        { ["map", "--eager", "-a", "buddy-tree"], "--eager does not go with -a buddy-tree" },
        { ["map", "--trace", "{sample}", "--eager", "-a", "slab-heap"], "--eager does not go with -a slab-heap" },
        { ["map", "-a", "buddy-tree", "--heap", "4KiB"], "--heap does not go with the tutorial's walk-through" },
        { ["map", "--ops", "10"], "--ops does not go with the demo's heap" },
        { ["map", "--eager"], "--eager does not go with the demo's heap" },
    };

    [Theory]
    [MemberData(nameof(IgnoredOptions))]
    public void Program_OptionTheCaseWouldIgnore_RefusedOneLineExitTwo(string[] args, string expected)
    {
        string output = Path.Combine(_directory, args[0] == "map" ? "out.svg" : "out.html");
        string[] resolved = [.. args.Select(a => a == "{sample}" ? Sample : a), "--out", output];
        var error = new StringWriter();

        int exit = Program.Run(resolved, error);

        string text = error.ToString();
        Assert.Equal(2, exit);
        Assert.Single(text.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.Contains(expected, text, StringComparison.Ordinal);
        Assert.False(File.Exists(output), "nothing is written");
    }

    [Theory]
    [InlineData("explore", "--tutorial", "-a", "buddy-tree", "--placement", "left-first")]
    [InlineData("map", "-a", "buddy-tree", "--placement", "best-fit")]
    [InlineData("map", "--trace", "{sample}", "--eager", "--ops", "50", "--heap", "64KiB")]
    public void Program_OptionTheCaseUses_Accepted(params string[] args)
    {
        string output = Path.Combine(_directory, args[0] == "map" ? "out.svg" : "out.html");
        var error = new StringWriter();

        Assert.Equal(0, Program.Run([.. args.Select(a => a == "{sample}" ? Sample : a), "--out", output], error));
        Assert.Equal(string.Empty, error.ToString());
        Assert.True(File.Exists(output));
    }

    /// <summary>Issue 32: <c>explore --ops 100000</c> ran for minutes towards a page no browser steps through.</summary>
    [Fact]
    public void Explore_MoreOpsThanAPageHolds_RefusedAtOnce()
    {
        var error = new StringWriter();

        Assert.Equal(2, Program.Run(["explore", Sample, "--ops", "100000", "--out", Path.Combine(_directory, "e.html")], error));
        Assert.StartsWith($"buddy explore: --ops must be at most {ExploreCommand.MaxSteps}, not 100000: a page holds at most", error.ToString(), StringComparison.Ordinal);
        Assert.Empty(ExploreCommand.Create().Parse([Sample, "--ops", ExploreCommand.MaxSteps.ToString(System.Globalization.CultureInfo.InvariantCulture)]).Errors);
    }
}
