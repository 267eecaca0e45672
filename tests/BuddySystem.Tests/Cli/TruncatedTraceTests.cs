using BuddySystem.Cli;

namespace BuddySystem.Tests;

/// <summary>
/// A gzip trace cut short, through the tool: <c>replay</c>, <c>map</c> and <c>explore</c> each refuse it with one line
/// that says so and exit 2 (issue 32: the cut at 3 500 bytes was replayed with exit 0, most other cuts reported their last
/// partial line as "'a' takes 3 arguments; &lt;size&gt; is missing").
/// </summary>
public sealed class TruncatedTraceTests : IDisposable
{
    private readonly string _directory = Directory.CreateTempSubdirectory("buddy-truncated-").FullName;

    public void Dispose() => Directory.Delete(_directory, recursive: true);

    public static TheoryData<string, int> CommandsAndCuts()
    {
        var cases = new TheoryData<string, int>();
        foreach (string command in new[] { "replay", "map", "explore" })
        {
            foreach (int cut in new[] { 2, 100, 3500, 5000, 65_536, 1_000_000, -8, -1 })
            {
                cases.Add(command, cut);
            }
        }

        return cases;
    }

    [Theory]
    [MemberData(nameof(CommandsAndCuts))]
    public void Command_GzipTraceCutShort_OneLineSaysTruncatedExitTwo(string command, int cut)
    {
        byte[] sample = File.ReadAllBytes(RepositoryFiles.Path("samples", "bash.trace.gz"));
        string trace = Path.Combine(_directory, "cut.trace.gz");
        File.WriteAllBytes(trace, sample[..(cut < 0 ? sample.Length + cut : cut)]);
        string output = Path.Combine(_directory, command == "map" ? "m.svg" : command == "explore" ? "e.html" : "r.json");
        string[] args = command switch
        {
            "replay" => ["replay", trace, "-a", "buddy-heap", "--runs", "1", "--json", output],
            "map" => ["map", "--trace", trace, "--out", output],
            _ => ["explore", trace, "--out", output],
        };
        var error = new StringWriter();

        int exit = Program.Run(args, error);

        string text = error.ToString();
        Assert.Equal(2, exit);
        Assert.Single(text.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.StartsWith($"buddy {command}: {trace} is truncated or corrupt: ", text, StringComparison.Ordinal);
        Assert.False(File.Exists(output), "nothing is written for a refused trace");
    }
}
