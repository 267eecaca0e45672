using System.Diagnostics;

namespace BuddySystem.Tests.Malloc;

/// <summary>Builds libbuddymalloc.so once with the README's command (artifacts/malloc) for the tests of this collection, when
/// the first test asks for it: a run where every test that needs it is skipped (no gcc, which links it and builds its C
/// loader) builds nothing.</summary>
public sealed class MallocLibraryFixture
{
    /// <summary>What building the library takes besides the .NET SDK: gcc links the NativeAOT engine and builds the loader.</summary>
    public const string Builder = "gcc";

    private readonly Lazy<string> _library;

    public MallocLibraryFixture()
    {
        Root = FindRoot();
        Work = Directory.CreateTempSubdirectory("buddymalloc-").FullName;
        _library = new Lazy<string>(Build, LazyThreadSafetyMode.ExecutionAndPublication);
    }

    public string Root { get; }

    /// <summary>The built libbuddymalloc.so (built on first use).</summary>
    public string Library => _library.Value;

    private string Build()
    {
        string library = Path.Combine(Root, "artifacts", "malloc", "libbuddymalloc.so");
        var (exit, output, error) = MallocTests.Run("dotnet", ["publish", "src/BuddySystem.Malloc", "-c", "Release", "-o", "artifacts/malloc"], Root, null, timeout: TimeSpan.FromMinutes(8));
        if (exit != 0 || !File.Exists(library))
        {
            throw new InvalidOperationException($"dotnet publish of the malloc library failed ({exit}):\n{output}\n{error}");
        }

        return library;
    }

    /// <summary>A scratch folder for the programs' files.</summary>
    public string Work { get; }

    private static string FindRoot()
    {
        for (string? dir = AppContext.BaseDirectory; dir != null; dir = Path.GetDirectoryName(dir))
        {
            if (File.Exists(Path.Combine(dir, "BuddySystem.slnx")))
            {
                return dir;
            }
        }

        throw new InvalidOperationException("BuddySystem.slnx not found above the test binaries.");
    }
}

[CollectionDefinition("malloc")]
public sealed class MallocCollection : ICollectionFixture<MallocLibraryFixture>;

/// <summary>Real programs on libbuddymalloc.so: the same output and exit code as on glibc's malloc; the C API's edges.</summary>
[Collection("malloc")]
public sealed class MallocTests(MallocLibraryFixture library)
{
    /// <summary>The programs run on both heaps, with their arguments (for a shell); a theory takes a row by
    /// <see cref="ProgramDataAttribute"/>, which skips it when the program is not installed.</summary>
    internal static readonly (string Program, string Arguments)[] Programs =
    [
        ("/usr/bin/python3", "-c \"import json,collections; d=[{'k':i,'v':str(i)*(i%7)} for i in range(30000)]; s=json.dumps(d); print(len(s), collections.Counter(len(x['v']) for x in json.loads(s)).most_common(3), sorted(d, key=lambda x: x['v'])[-1]['k'])\""),
        ("perl", "-e \"my %h; \\$h{\\\"k\\$_\\\"} = \\$_ x 3 for 1..100000; my @k = sort keys %h; my \\$n = grep { /7.*7/ } @k; print scalar(@k), ' ', \\$n, ' ', \\$k[-1], qq(\\n)\""),
        ("sqlite3", ":memory: \"create table a(id integer primary key, g int, s text); create table b(id int, w real); with recursive c(x) as (select 1 union all select x+1 from c where x<20000) insert into a select x, x%37, 's' || x from c; insert into b select id, id*0.5 from a where id%3=0; create index ag on a(g); select a.g, count(*), sum(b.w), max(a.s) from a join b on a.id=b.id group by a.g order by a.g limit 10;\""),
        ("/bin/bash", "-c \"for i in 1 2 3; do (echo sub \\$i; seq 1 2000 | sort -r | head -2) | tr a-z A-Z; done | sort | uniq -c\""),
    ];

    [ToolTheory(MallocLibraryFixture.Builder, "/bin/sh")]
    [ProgramData(0)]
    [ProgramData(1)]
    [ProgramData(2)]
    [ProgramData(3)]
    public void Program_OnTheBuddyHeap_GivesTheSameOutputAndExitCode(string program, string arguments)
    {
        var plain = Run("/bin/sh", ["-c", $"{program} {arguments}"], library.Work, null);
        var buddy = Run("/bin/sh", ["-c", $"{program} {arguments}"], library.Work, library.Library, pythonMalloc: true);
        Assert.Equal(0, plain.Exit);
        Assert.Equal(plain.Exit, buddy.Exit);
        Assert.Equal(plain.Output, buddy.Output);
        Assert.DoesNotContain("buddymalloc", buddy.Error, StringComparison.Ordinal);
    }

    [ToolTheory(MallocLibraryFixture.Builder, "/bin/sh")]
    [ProgramData(0)]
    [ProgramData(1)]
    [ProgramData(2)]
    [ProgramData(3)]
    public void Program_OnTheHardenedHeap_GivesTheSameOutputAndExitCode(string program, string arguments)
    {
        var plain = Run("/bin/sh", ["-c", $"{program} {arguments}"], library.Work, null);
        var hardened = Run("/bin/sh", ["-c", $"PYTHONMALLOC=malloc {program} {arguments}"], library.Work, library.Library, environment: ("BUDDY_MALLOC_HARDEN", "1"));
        Assert.Equal(0, plain.Exit);
        Assert.Equal(plain.Exit, hardened.Exit);
        Assert.Equal(plain.Output, hardened.Output);
        Assert.DoesNotContain("buddymalloc", hardened.Error, StringComparison.Ordinal);
    }

    [ToolFact(MallocLibraryFixture.Builder)]
    public void CApiEdges_OnTheHardenedHeap_AllHold()
    {
        string program = Compile("api_edges.c");
        var result = Run(program, [], library.Work, library.Library, environment: ("BUDDY_MALLOC_HARDEN", "1"));
        Assert.True(result.Exit == 0, result.Output + result.Error);
        Assert.DoesNotContain("FAIL", result.Output, StringComparison.Ordinal);
    }

    [ToolFact(MallocLibraryFixture.Builder, "sort")]
    public void SortOfALargeFile_OnTheBuddyHeap_IsByteIdentical()
    {
        string input = Path.Combine(library.Work, "lines.txt");
        var random = new Random(17);
        File.WriteAllLines(input, Enumerable.Range(0, 200_000).Select(i => $"{random.Next():x8} {i} {new string('x', random.Next(0, 40))}"));
        var plain = Run("sort", [input], library.Work, null);
        var buddy = Run("sort", [input], library.Work, library.Library);
        Assert.Equal(0, buddy.Exit);
        Assert.Equal(plain.Output, buddy.Output);
    }

    [ToolFact(MallocLibraryFixture.Builder, "/bin/bash", "git", "sha256sum", "objdump", "grep", "seq")]
    public void GitAndGcc_OnTheBuddyHeap_GiveTheSameResults()
    {
        string script = """
            set -e
            export GIT_AUTHOR_DATE='2020-01-01T00:00:00Z' GIT_COMMITTER_DATE='2020-01-01T00:00:00Z' HOME="$PWD"
            rm -rf repo && git init -q repo && cd repo
            git config user.email t@example.invalid && git config user.name t
            for i in 1 2 3 4 5; do seq 1 $((i * 500)) > f$i.txt; echo "int f$i(int x){return x*$i;}" > f$i.c; git add . && git commit -q -m "commit $i"; done
            git log -p | sha256sum
            git gc -q && git count-objects -v | grep -E '^(count|in-pack)'
            gcc -O2 -c f5.c -o f5.o && objdump -d f5.o | grep -c .
            """;
        string plainDir = Directory.CreateDirectory(Path.Combine(library.Work, "git-plain")).FullName;
        string buddyDir = Directory.CreateDirectory(Path.Combine(library.Work, "git-buddy")).FullName;
        var plain = Run("/bin/bash", ["-c", script], plainDir, null);
        var buddy = Run("/bin/bash", ["-c", script], buddyDir, library.Library);
        Assert.True(plain.Exit == 0, plain.Error);
        Assert.True(buddy.Exit == 0, buddy.Error);
        Assert.Equal(plain.Output, buddy.Output);
    }

    [ToolFact(MallocLibraryFixture.Builder)]
    public void MultiThreadedProgram_OnTheBuddyHeap_GivesTheSameOutput()
    {
        string program = Compile("threads.c");
        var plain = Run(program, [], library.Work, null);
        var buddy = Run(program, [], library.Work, library.Library);
        Assert.Equal(0, buddy.Exit);
        Assert.Equal(plain.Output, buddy.Output);
    }

    [ToolFact(MallocLibraryFixture.Builder)]
    public void ForkWhileOtherThreadsAllocate_EveryChildCanPauseTheHeap()
    {
        // Each child makes an allocation the heap cannot serve, which pauses every thread's share first: a share another
        // thread had open at the fork hung the child before fork paused the shares (fork_busy.c).
        string program = Compile("fork_busy.c");
        var result = Run(program, ["150"], library.Work, library.Library, environment: ("BUDDY_MALLOC_LIMIT", "512MiB"));
        Assert.True(result.Exit == 0, result.Output + result.Error);
        Assert.Equal("ok 150\n", result.Output);
    }

    [ToolFact(MallocLibraryFixture.Builder)]
    public void CApiEdges_OnTheBuddyHeap_AllHold()
    {
        string program = Compile("api_edges.c");
        var result = Run(program, [], library.Work, library.Library);
        Assert.True(result.Exit == 0, result.Output + result.Error);
        Assert.DoesNotContain("FAIL", result.Output, StringComparison.Ordinal);
        Assert.Contains("ok RSS falls after a large free", result.Output, StringComparison.Ordinal);
        Assert.Contains("ok frees from another thread", result.Output, StringComparison.Ordinal);
    }

    [ToolFact(MallocLibraryFixture.Builder)]
    public void DoubleFree_AbortsWithOneLineNamingTheAddress()
    {
        string program = Compile("api_edges.c");
        var result = Run(program, ["double-free"], library.Work, library.Library);
        string address = result.Output.Trim();
        Assert.Equal(134, result.Exit); // SIGABRT through /bin/sh-less exec: 128 + 6
        string line = Assert.Single(result.Error.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.StartsWith("buddymalloc: free(): ", line, StringComparison.Ordinal);
        Assert.Contains(address, line, StringComparison.Ordinal);
        Assert.Contains("double free", line, StringComparison.Ordinal);
    }

    [ToolTheory(MallocLibraryFixture.Builder)]
    [InlineData("double-free-deep", "free(): ", "not allocated")]
    [InlineData("double-free-many", "free(): ", "not allocated")]
    [InlineData("interior-free", "free(): ", "not the start of a block")]
    [InlineData("realloc-freed", "realloc(): ", "not allocated")]
    [InlineData("write-after-free", "malloc(): heap corruption: ", "overwritten after free")]
    public void SmallBlockMisuse_ThroughTheLoadersCaches_AbortsWithOneLine(string mode, string call, string problem)
    {
        string program = Compile("api_edges.c");
        var result = Run(program, [mode, "--after-start"], library.Work, library.Library);
        Assert.Equal(134, result.Exit);
        string line = Assert.Single(result.Error.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.StartsWith("buddymalloc: " + call, line, StringComparison.Ordinal);
        Assert.Contains(problem, line, StringComparison.Ordinal);
        Assert.DoesNotContain("Arg_", line, StringComparison.Ordinal);
        if (mode != "write-after-free")
        {
            Assert.Contains(result.Output.Trim(), line, StringComparison.Ordinal);
        }
    }

    [ToolTheory(MallocLibraryFixture.Builder)]
    [InlineData("double-free", "free(): ", "not allocated")]
    [InlineData("double-free-deep", "free(): ", "not allocated")]
    [InlineData("interior-free", "free(): ", "not the start of a block")]
    [InlineData("realloc-freed", "realloc(): ", "not allocated")]
    [InlineData("write-after-free-early", "malloc(): heap corruption: ", "overwritten after free")]
    public void SmallBlockMisuse_InTheStartUpArena_AbortsWithOneLineAsTheHeapDoes(string mode, string call, string problem)
    {
        string program = Compile("api_edges.c");
        var result = Run(program, [mode], library.Work, library.Library);
        Assert.Equal(134, result.Exit);
        string line = Assert.Single(result.Error.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.StartsWith("buddymalloc: " + call, line, StringComparison.Ordinal);
        Assert.Contains(problem, line, StringComparison.Ordinal);
        if (mode != "write-after-free-early")
        {
            Assert.Contains(result.Output.Trim(), line, StringComparison.Ordinal);
        }
    }

    [ToolFact(MallocLibraryFixture.Builder, "/bin/sh")]
    public void ShortProcess_UnderTheLibrary_NeverStartsTheRuntime()
    {
        // The runtime's start makes a thread (".NET Finalizer"); a process served by the start-up arena makes none.
        // dash's builtins only, so the shell itself reads its own status.
        var result = Run("/bin/sh", ["-c", "while read key value; do [ \"$key\" = Threads: ] && echo $value; done < /proc/self/status; exit 0"], library.Work, library.Library);
        Assert.Equal(0, result.Exit);
        Assert.Equal("1", result.Output.Trim());
    }

    [ToolFact(MallocLibraryFixture.Builder, "/usr/bin/python3")]
    public void Stats_Report_NamesThePidAndTheProgram()
    {
        // (coreutils programs close stderr in an atexit handler that runs before the report: python3 does not.)
        var result = Run("/usr/bin/python3", ["-c", "print(1)"], library.Work, library.Library, environment: ("BUDDY_MALLOC_STATS", "1"));
        Assert.Equal(0, result.Exit);
        Assert.Matches(@"buddymalloc: pid \d+ \(/usr/bin/python3 -c print\(1\)\)", result.Error);
    }

    /// <summary>Issue 32: preloaded by hand, a limit the engine cannot read fell back to 64 GiB without a word.</summary>
    [ToolTheory(MallocLibraryFixture.Builder)]
    [InlineData("BUDDY_MALLOC_LIMIT", "banana", "buddymalloc: BUDDY_MALLOC_LIMIT=banana is not a limit such as 2GiB: the heap takes the default, 64 GiB")]
    [InlineData("BUDDY_MALLOC_LIMIT", "0", "buddymalloc: BUDDY_MALLOC_LIMIT=0 is not a limit such as 2GiB: the heap takes the default, 64 GiB")]
    [InlineData("BUDDY_MALLOC_HARDEN", "yes", "buddymalloc: BUDDY_MALLOC_HARDEN=yes is not 1 or 0: taken as 1 (on)")]
    [InlineData("BUDDY_MALLOC_LIMIT", "64 mib", "")]
    [InlineData("BUDDY_MALLOC_HARDEN", "1", "")]
    public void Variables_AValueTheLibraryWouldTakeSilently_OneLineWarningAtLoad(string name, string value, string warning)
    {
        var result = Run("/bin/true", [], library.Work, library.Library, environment: (name, value));
        Assert.Equal(0, result.Exit);
        Assert.Equal(warning, result.Error.TrimEnd());
    }

    [ToolFact(MallocLibraryFixture.Builder)]
    public void Limit_AllocationsPastIt_FailWithEnomemAndTheProgramGoesOn()
    {
        string program = Compile("api_edges.c");
        var result = Run(program, ["limit"], library.Work, library.Library, environment: ("BUDDY_MALLOC_LIMIT", "64MiB"));
        Assert.True(result.Exit == 0, result.Output + result.Error);
        Assert.Contains("ok malloc past the limit: NULL + ENOMEM", result.Output, StringComparison.Ordinal);
        Assert.Contains("ok the program goes on after ENOMEM", result.Output, StringComparison.Ordinal);
    }

    private string Compile(string source)
    {
        string output = Path.Combine(library.Work, Path.GetFileNameWithoutExtension(source));
        string path = Path.Combine(library.Root, "tests", "BuddySystem.Tests", "Malloc", source);
        var result = Run("gcc", ["-O2", "-pthread", "-w", "-o", output, path], library.Work, null);
        Assert.True(result.Exit == 0, result.Error);
        return output;
    }

    internal static (int Exit, string Output, string Error) Run(string program, string[] arguments, string directory, string? preload,
        bool pythonMalloc = false, (string Name, string Value)? environment = null, TimeSpan? timeout = null)
    {
        TimeSpan limit = timeout ?? TimeSpan.FromSeconds(120);
        var start = new ProcessStartInfo(program) { WorkingDirectory = directory, RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (string argument in arguments)
        {
            start.ArgumentList.Add(argument);
        }

        if (preload != null)
        {
            start.Environment["LD_PRELOAD"] = preload;
        }

        if (pythonMalloc)
        {
            start.Environment["PYTHONMALLOC"] = "malloc";
        }

        if (environment is { } variable)
        {
            start.Environment[variable.Name] = variable.Value;
        }

        using Process process = Process.Start(start)!;
        Task<string> output = process.StandardOutput.ReadToEndAsync();
        Task<string> error = process.StandardError.ReadToEndAsync();
        if (!process.WaitForExit(limit))
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException($"{program} {string.Join(' ', arguments)} did not finish in {limit.TotalSeconds} s; killed.");
        }

        return (process.ExitCode, output.Result, error.Result);
    }
}

/// <summary><c>buddy run</c>: the program runs on the library and its exit code comes back.</summary>
[Collection("malloc")]
public sealed class RunCommandTests(MallocLibraryFixture library)
{
    [ToolFact(MallocLibraryFixture.Builder, "/usr/bin/python3")]
    public void Run_PassesTheExitCodeThroughAndPrintsStats()
    {
        string dll = Path.Combine(AppContext.BaseDirectory, "buddy.dll");
        var result = MallocTests.Run("dotnet", [dll, "run", "--stats", "--library", library.Library, "--", "/usr/bin/python3", "-c", "import sys; print(1); sys.exit(7)"], library.Work, null);
        Assert.Equal(7, result.Exit);
        Assert.Equal("1\n", result.Output);
        Assert.Contains("buddymalloc: buddyinfo", result.Error, StringComparison.Ordinal);
    }

    [ToolFact(MallocLibraryFixture.Builder)]
    public void RunHarden_AnOverflow_EndsTheProgramWithOneLineNamingTheBlock()
    {
        string dll = Path.Combine(AppContext.BaseDirectory, "buddy.dll");
        string misuse = Path.Combine(library.Work, $"misuse-{Guid.NewGuid():N}");
        var compiled = MallocTests.Run("gcc", ["-O2", "-pthread", "-o", misuse, Path.Combine(library.Root, "src", "BuddySystem.Cli", "Bench", "Programs", "misuse.c")], library.Work, null);
        Assert.True(compiled.Exit == 0, compiled.Error);
        var result = MallocTests.Run("dotnet", [dll, "run", "--harden", "--library", library.Library, "--", misuse, "overflow-16"], library.Work, null);
        Assert.Equal(134, result.Exit);
        string block = result.Output.Split('\n')[0]["address ".Length..];
        string line = Assert.Single(result.Error.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.StartsWith("buddymalloc: free(): heap overflow at ", line, StringComparison.Ordinal);
        Assert.Contains($"the block at {block} of 64 bytes", line, StringComparison.Ordinal);
        Assert.Contains("offset 64 holds 0x41", line, StringComparison.Ordinal);
    }

    [ToolFact(MallocLibraryFixture.Builder, "perl")]
    public void RunWithMap_DrawsTheProgramsHeapAtExitAndPassesTheExitCode()
    {
        string dll = Path.Combine(AppContext.BaseDirectory, "buddy.dll");
        string svg = Path.Combine(library.Work, $"run-{Guid.NewGuid():N}.svg");
        // perl leaves its blocks allocated at exit (no global destruction): the map shows them.
        var result = MallocTests.Run("dotnet", [dll, "run", "--map", svg, "--library", library.Library, "--",
            "perl", "-e", "my %h; $h{$_} = 'x' x ($_ % 300) for 1..20000; print scalar(keys %h), qq(\n); exit 3"], library.Work, null);
        Assert.Equal(3, result.Exit);
        Assert.Equal("20000\n", result.Output);
        Assert.Contains("map: ", result.Error, StringComparison.Ordinal);
        string picture = File.ReadAllText(svg);
        Assert.Contains("Buddy heap map: perl at exit, on libbuddymalloc.so", picture, StringComparison.Ordinal);
        var allocated = System.Text.RegularExpressions.Regex.Match(picture, @"allocated (≈ )?([0-9.]+) (KiB|MiB)");
        Assert.True(allocated.Success, "the header names the allocated bytes");
        Assert.True(allocated.Groups[3].Value == "MiB" || double.Parse(allocated.Groups[2].Value, System.Globalization.CultureInfo.InvariantCulture) > 500,
            $"20 000 hash entries stay allocated at exit: {allocated.Value}");
    }
}

/// <summary><c>buddy bench --programs</c> (workload P): a real, quick run of two programs on every malloc, output checked.</summary>
[Collection("malloc")]
public sealed class ProgramBenchTests(MallocLibraryFixture library)
{
    [ToolFact(MallocLibraryFixture.Builder, "perl", "sqlite3")]
    public void RunPrograms_Quick_RunsEachProgramOnEachMallocWithTheSameOutputAndWritesJson()
    {
        string json = Path.Combine(library.Work, $"programs-{Guid.NewGuid():N}.json");
        string markdown = Path.ChangeExtension(json, ".md");
        var output = new StringWriter();

        int exit = BuddySystem.Cli.Commands.BenchCommand.RunPrograms(BenchTestConsole.Create(output), ["perl", "sqlite3"], null, 1, quick: true, library.Library, json, null, markdown);

        Assert.True(exit == 0, output.ToString());
        using var document = System.Text.Json.JsonDocument.Parse(File.ReadAllText(json));
        var results = document.RootElement.GetProperty("results").EnumerateArray().ToList();
        // Every peer present on this machine, in table order (a missing one is skipped with a note).
        string[] allocators = [.. BuddySystem.Cli.Bench.Programs.ProgramAllocator.Ids.Where(id => BuddySystem.Cli.Bench.Programs.ProgramAllocator.Create(id, library.Library).Unavailable is null)];
        Assert.Contains("buddymalloc-harden", allocators);
        Assert.Equal(2 * allocators.Length, results.Count);
        foreach (string program in new[] { "perl", "sqlite3" })
        {
            Assert.Equal(allocators, results.Where(r => r.GetProperty("param").GetString() == program).Select(r => r.GetProperty("allocator").GetString()));
        }

        foreach (var r in results)
        {
            Assert.Equal("P", r.GetProperty("workload").GetString());
            Assert.True(r.GetProperty("same_output").GetBoolean());
            Assert.InRange(r.GetProperty("wall_seconds").GetDouble(), 0.0001, 60);
            Assert.InRange(r.GetProperty("cpu_seconds").GetDouble(), 0.0001, 60);
            // A real program's peak: more than the launcher's floor, far less than the .NET process that started it.
            Assert.InRange(r.GetProperty("max_rss_bytes").GetInt64(), 1L << 20, 1L << 30);
        }

        Assert.Contains("| perl | buddymalloc | ", File.ReadAllText(markdown), StringComparison.Ordinal);
        Assert.Contains("same", output.ToString(), StringComparison.Ordinal);
    }

    [ToolFact(MallocLibraryFixture.Builder)]
    public void RunMisuse_HardenedMode_StopsEveryCaseNamingTheAddress()
    {
        string json = Path.Combine(library.Work, $"misuse-{Guid.NewGuid():N}.json");
        var output = new StringWriter();

        int exit = BuddySystem.Cli.Commands.BenchCommand.RunMisuse(BenchTestConsole.Create(output), ["buddymalloc", "buddymalloc-harden"], library.Library, json, null);

        Assert.True(exit == 0, output.ToString());
        using var document = System.Text.Json.JsonDocument.Parse(File.ReadAllText(json));
        var results = document.RootElement.GetProperty("results").EnumerateArray().ToList();
        Assert.Equal(2 * BuddySystem.Cli.Bench.Programs.MisuseBattery.Cases.Count, results.Count);
        var hardened = results.Where(r => r.GetProperty("allocator").GetString() == "buddymalloc-harden").ToList();
        Assert.Equal(BuddySystem.Cli.Bench.Programs.MisuseBattery.Cases.Count, hardened.Count);
        Assert.All(hardened, r => Assert.True(r.GetProperty("verdict").GetString() == "StoppedNamingTheAddress",
            $"{r.GetProperty("case").GetString()}: {r.GetProperty("verdict").GetString()} {r.GetProperty("message").GetString()}"));
        // The default mode is exact about frees, and blind to writes past a block into its neighbour: no redzone.
        var plain = results.Where(r => r.GetProperty("allocator").GetString() == "buddymalloc").ToDictionary(r => r.GetProperty("case").GetString()!, r => r.GetProperty("verdict").GetString());
        Assert.Equal("StoppedNamingTheAddress", plain["double-free-48-after-16"]);
        Assert.Equal("Missed", plain["overflow-16"]);
        Assert.Contains($"{BuddySystem.Cli.Bench.Programs.MisuseBattery.Cases.Count} of {BuddySystem.Cli.Bench.Programs.MisuseBattery.Cases.Count}", output.ToString(), StringComparison.Ordinal);
    }

    [Fact]
    public void RunMisuse_WithPrograms_IsBadInputExitTwo()
    {
        string dll = Path.Combine(AppContext.BaseDirectory, "buddy.dll");
        var result = MallocTests.Run("dotnet", [dll, "bench", "--misuse", "--programs"], library.Work, null);
        Assert.Equal(2, result.Exit);
        Assert.Contains("--misuse does not go with", Assert.Single(result.Error.Split('\n', StringSplitOptions.RemoveEmptyEntries)), StringComparison.Ordinal);
    }

    [ToolTheory(MallocLibraryFixture.Builder)]
    [InlineData("emacs", "glibc", "unknown program 'emacs'")]
    [InlineData("perl", "buddy-heap", "unknown allocator 'buddy-heap' for --programs")]
    public void RunPrograms_UnknownName_ThrowsBadInputSayingWhich(string program, string allocator, string message)
    {
        var error = Assert.Throws<BuddySystem.Cli.BadInputException>(() => BuddySystem.Cli.Commands.BenchCommand.RunPrograms(BenchTestConsole.Create(new StringWriter()), [program], [allocator], 1, quick: true, library.Library, null, null, null));
        Assert.Contains(message, error.Message, StringComparison.Ordinal);
    }
}
