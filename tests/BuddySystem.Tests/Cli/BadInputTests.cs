using BuddySystem.Cli;

namespace BuddySystem.Tests;

/// <summary>
/// Every command with bad values of every option, through the tool's own entry point: each must end in exit code 2 with
/// one line on standard error naming the command, and no stack trace. Issue 12 found crashes with stack traces on
/// <c>buddy soak --engine nope</c>, <c>buddy stress --heap-mib -1</c> and <c>buddy explore</c> on a trace whose line is
/// <c>a 1 18446744073709551615 2</c>.
/// </summary>
public sealed class BadInputTests : IDisposable
{
    private const string Dir = "{dir}";
    private const string Trace = "{trace}";
    private const string BadTrace = "{bad-trace}";
    private const string DeadFree = "{dead-free}";
    private const string DeadRealloc = "{dead-realloc}";

    private readonly string _directory = Directory.CreateTempSubdirectory("buddy-bad-input-").FullName;

    public BadInputTests()
    {
        File.WriteAllText(Path.Combine(_directory, "good.trace"), "a 1 8 8\nf 1\n");
        File.WriteAllText(Path.Combine(_directory, "bad.trace"), "a 1 18446744073709551615 2\n");
        File.WriteAllText(Path.Combine(_directory, "dead-free.trace"), "a 1 8 8\nf 2\n");
        File.WriteAllText(Path.Combine(_directory, "dead-realloc.trace"), "a 1 8 8\nr 2 16\n");
    }

    public void Dispose() => Directory.Delete(_directory, recursive: true);

    /// <summary>A command line per bad value; the placeholders name files in the test's folder.</summary>
    public static TheoryData<string[]> BadCommandLines { get; } = new()
    {
        // the tool itself
        new[] { "nosuchcommand" },
        new[] { "shm", "nosuchcommand" },
        new[] { "--no-such-option" },
        new[] { "demo", "--no-such-option" },

        // demo
        new[] { "demo", "--map", "x.gif" },
        new[] { "demo", "--map", "/nonexistent/dir/x.svg" },

        // bench
        new[] { "bench", "-w", "W9" },
        new[] { "bench", "-w", "W1,W3" },
        new[] { "bench", "-a", "tcmalloc" },
        new[] { "bench", "--allocators", "glibc" },
        new[] { "bench", "--runs", "0" },
        new[] { "bench", "--runs", "many" },
        new[] { "bench", "--quick", "-w", "W1", "-a", "native-memory", "--runs", "1", "--json", "/nonexistent/dir/b.json" },
        new[] { "bench", "--programs", "--program", "emacs" },
        new[] { "bench", "-w", "pool", "-a", "ring-pool" },
        new[] { "bench-pool-run", "ring-pool", "1", "10" },
        new[] { "bench-pool-run", "array-pool", "0", "10" },
        new[] { "bench-pool-run", "glibc", "1", "10" },
        new[] { "bench", "--programs", "--program", "perl,sqlite3" },
        new[] { "bench", "--programs", "-a", "buddy-heap" },
        new[] { "bench", "--programs", "-w", "W1" },
        new[] { "bench", "--programs", "--library", "/nonexistent/libbuddymalloc.so" },
        new[] { "bench", "--program", "perl" },
        new[] { "bench", "-a", "buddymalloc" },

        // replay
        new[] { "replay" },
        new[] { "replay", "/nonexistent/trace.gz" },
        new[] { "replay", Trace, "-a", "nope" },
        new[] { "replay", Trace, "-a", "array-pool" },
        new[] { "replay", Trace, "--heap", "3000" },
        new[] { "replay", Trace, "--heap", "lots" },
        new[] { "replay", Trace, "--heap", "-1" },
        new[] { "replay", Trace, "--heap-size", "1M" },
        new[] { "replay", Trace, "--runs", "0" },
        new[] { "replay", BadTrace, "-a", "buddy-heap", "--runs", "1" },
        new[] { "replay", DeadFree, "-a", "buddy-heap", "--runs", "1" },
        new[] { "replay", Trace, "-a", "buddy-heap", "--runs", "1", "--json", "/nonexistent/dir/r.json" },

        // map
        new[] { "map", "--out", "x.jpg" },
        new[] { "map", "--out", "/nonexistent/dir/m.svg" },
        new[] { "map", "--workload", "W2" },
        new[] { "map", "--workload", "W3", "--trace", Trace },
        new[] { "map", "--trace", "/nonexistent/trace.gz" },
        new[] { "map", "--trace", BadTrace, "--out", Dir + "m.svg" },
        new[] { "map", "--trace", DeadFree, "--out", Dir + "m.svg" },
        new[] { "map", "--trace", DeadRealloc, "--out", Dir + "m.svg" },
        new[] { "map", "--trace", Trace, "--ops", "-1" },
        new[] { "map", "--trace", Trace, "--heap", "8" },
        new[] { "map", "--trace", Trace, "--heap", "2GiB" },
        new[] { "map", "--trace", Trace, "--heap", "big" },
        new[] { "map", "-a", "glibc" },
        new[] { "map", "-a", "buddy-tree", "--workload", "W3" },
        new[] { "map", "--placement", "upside-down" },
        new[] { "map", "--shared", "/nonexistent/heap" },
        new[] { "map", "--shared", Trace, "--out", Dir + "m.svg" },

        // explore
        new[] { "explore" },
        new[] { "explore", "/nonexistent/trace.gz" },
        new[] { "explore", "-a", "nope", Trace },
        new[] { "explore", Trace, "-a", "buddy-heap", "-a", "buddy-tree" },
        new[] { "explore", Trace, "-a", "slab-heap" },
        new[] { "explore", BadTrace, "--out", Dir + "e.html" },
        new[] { "explore", DeadFree, "--out", Dir + "e.html" },
        new[] { "explore", DeadRealloc, "--out", Dir + "e.html" },
        new[] { "explore", Trace, "--ops", "-5" },
        new[] { "explore", Trace, "--heap", "1" },
        new[] { "explore", Trace, "--heap", "64 furlongs" },
        new[] { "explore", Trace, "--placement", "middle" },
        new[] { "explore", "--tutorial", "--out", "/nonexistent/dir/e.html" },

        // soak
        new[] { "soak", "-a", "nope" },
        new[] { "soak", "--engine", "buddy-heap" },
        new[] { "soak", "-a", "glibc" },
        new[] { "soak", "--operations", "-1" },
        new[] { "soak", "--seed", "-1" },
        new[] { "soak", "--heap", "-1" },
        new[] { "soak", "--heap", "1KiB" },
        new[] { "soak", "--heap", "2TiB" },
        new[] { "soak", "--heap-mib", "16" },
        new[] { "soak", "--validate-every", "0" },

        // stress
        new[] { "stress", "--threads", "0" },
        new[] { "stress", "--scale", "0" },
        new[] { "stress", "--iterations", "-3" },
        new[] { "stress", "-a", "buddy-heap" },
        new[] { "stress", "--allocator", "nope" },
        new[] { "stress", "--heap", "-1" },
        new[] { "stress", "--heap", "99999999999999999999" },
        new[] { "stress", "--heap-mib", "-1" },
        new[] { "stress", "--seed", "x" },

        // shm
        new[] { "shm" },
        new[] { "shm", "stat" },
        new[] { "shm", "stat", "/nonexistent/heap" },
        new[] { "shm", "stat", Trace },
        new[] { "shm", "soak", "--kills", "0" },
        new[] { "shm", "soak", "--workers", "0" },
        new[] { "shm", "soak", "--heap", "1" },
        new[] { "shm", "soak", "--heap", "lots" },
        new[] { "shm", "soak", "--max-delay-ms", "-1" },
        new[] { "shm", "soak", "--heap", "64KiB" },
        new[] { "shm", "soak", "--workers", "65" },
        new[] { "shm", "soak", "--max-delay-ms", "0" },
        new[] { "shm", "soak", "--seed", "x" },
        new[] { "shm", "soak", "--kills", "1", "--file", Trace },

        // run, crash-test, shm-worker
        new[] { "run" },
        new[] { "run", "--library", "/nonexistent/libbuddymalloc.so", "--", "true" },
        new[] { "crash-test", "segfault" },
        new[] { "shm-worker", "/nonexistent/heap", "0", "1", "1" },
        new[] { "shm-worker", Trace, "0", "1", "1" },
        new[] { "shm-worker", Trace, "zero", "1", "1" },
    };

    [Theory]
    [MemberData(nameof(BadCommandLines))]
    public void Program_BadValue_OneLineOnStderrNoStackTraceExitTwo(string[] args)
    {
        string[] resolved = [.. args.Select(Resolve)];
        var error = new StringWriter();

        int exit = Program.Run(resolved, error);

        string text = error.ToString();
        Assert.True(exit == 2, $"exit {exit} for `buddy {string.Join(' ', resolved)}`: {text}");
        Assert.StartsWith("buddy", text, StringComparison.Ordinal);
        Assert.Single(text.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.DoesNotContain("   at ", text, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("soak", "-a", "nope", "'buddy-heap'")]
    [InlineData("stress", "-a", "buddy-heap", "'concurrent-heap'")]
    [InlineData("bench", "-a", "nope", "'mimalloc'")]
    [InlineData("replay", "x", "-a", "nope", "'glibc'")]
    [InlineData("bench", "-w", "W9", "'W6'")]
    public void Program_UnknownName_ErrorListsTheValidOnes(params string[] argsAndExpected)
    {
        var error = new StringWriter();

        Assert.Equal(2, Program.Run(argsAndExpected[..^1], error));
        Assert.Contains(argsAndExpected[^1], error.ToString(), StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("buddy: 'bogus' is not a buddy command; the commands: demo, bench, replay, map, explore, soak, stress, shm, run.", "bogus")]
    [InlineData("buddy shm: 'bogus' is not a buddy shm command; the commands: stat, soak, bench.", "shm", "bogus")]
    [InlineData("buddy: give a command: demo, bench, replay, map, explore, soak, stress, shm, run.")]
    [InlineData("buddy shm: give a command: stat, soak, bench.", "shm")]
    [InlineData("buddy: '--bogus' is not an option of buddy; give a command first: demo, bench,", "--bogus")]
    public void Program_UnknownOrMissingCommand_NamesItAndListsTheCommands(string expected, params string[] args)
    {
        var error = new StringWriter();

        Assert.Equal(2, Program.Run(args, error));
        Assert.StartsWith(expected, error.ToString(), StringComparison.Ordinal);
        Assert.DoesNotContain("crash-test", error.ToString(), StringComparison.Ordinal); // hidden: a child process of the tests
    }

    [Fact]
    public void Program_HeapWithUnits_IsAcceptedByEveryCommand()
    {
        var error = new StringWriter();
        string trace = Resolve(Trace);

        Assert.Equal(0, Program.Run(["soak", "-a", "buddy-heap", "--operations", "100", "--heap", "64KiB"], error));
        Assert.Equal(0, Program.Run(["stress", "-a", "locked-heap", "--threads", "1", "--scale", "1", "--iterations", "1", "--heap", "1MiB"], error));
        Assert.Equal(0, Program.Run(["map", "--trace", trace, "--heap", "4KiB", "--out", Path.Combine(_directory, "m.svg")], error));
        Assert.Equal(0, Program.Run(["explore", trace, "--heap", "4KiB", "--out", Path.Combine(_directory, "e.html")], error));
        Assert.Equal(0, Program.Run(["replay", trace, "-a", "buddy-heap", "-a", "buddy-tree", "--heap", "64KiB", "--runs", "1"], error));
        Assert.Equal(string.Empty, error.ToString());
    }

    private string Resolve(string arg) => arg switch
    {
        Trace => Path.Combine(_directory, "good.trace"),
        BadTrace => Path.Combine(_directory, "bad.trace"),
        DeadFree => Path.Combine(_directory, "dead-free.trace"),
        DeadRealloc => Path.Combine(_directory, "dead-realloc.trace"),
        _ when arg.StartsWith(Dir, StringComparison.Ordinal) => Path.Combine(_directory, arg[Dir.Length..]),
        _ => arg,
    };
}
