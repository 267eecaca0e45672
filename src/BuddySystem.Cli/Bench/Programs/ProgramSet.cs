using System.Text;

namespace BuddySystem.Cli.Bench.Programs;

/// <summary>
/// The programs of workload P (docs/benchmarks.md): the programs of the malloc tests, sized to run for about a second each on
/// glibc (a tenth of that at the quick scale). Their inputs are generated from fixed seeds into a work folder, so every
/// allocator sees the same bytes and the output can be compared byte for byte.
/// </summary>
internal static class ProgramSet
{
    /// <summary>The names, in table order.</summary>
    public static IReadOnlyList<string> Names { get; } = ["start-true", "start-sh", "make", "python3", "perl", "sqlite3", "git", "gcc", "sort", "threads", "bash"];

    /// <summary>Process starts per run of the start rows (docs/benchmarks.md, issue 22): 300.</summary>
    public const int Starts = 300;

    private const string PythonScript = """
        import json, sys, collections
        n = int(sys.argv[1])
        d = [{'k': i, 'v': str(i) * (i % 7), 't': [i % 3, str(i % 11)]} for i in range(n)]
        s = json.dumps(d)
        back = json.loads(s)
        c = collections.Counter(len(x['v']) for x in back)
        w = collections.Counter(s[i:i + 3] for i in range(0, len(s), 3))
        ordered = sorted(back, key=lambda x: (x['v'], -x['k']))
        print(len(s), c.most_common(3), len(w), w.most_common(2), ordered[-1]['k'], ordered[0]['k'])
        """;

    private const string PerlScript = """
        my $n = shift; my %h;
        $h{"k$_"} = $_ x 3 for 1..$n;
        my @k = sort keys %h;
        my $m = grep { /7.*7/ } @k;
        my %len; $len{length $h{$_}}++ for @k;
        my $joined = join ',', map { "$_=$h{$_}" } @k[0..999];
        (my $sub = $joined) =~ s/(\d)(\d)/$2$1/g;
        print scalar(@k), " $m $k[-1] ", join(' ', map { "$_:$len{$_}" } sort { $a <=> $b } keys %len), " ", length($sub), "\n";
        """;

    private const string SqliteScript = """
        create table a(id integer primary key, g int, s text);
        create table b(id int, w real);
        with recursive c(x) as (select 1 union all select x+1 from c where x<{0}) insert into a select x, x%37, 's' || x from c;
        insert into b select id, id*0.5 from a where id%3=0;
        create index ag on a(g);
        create index bi on b(id);
        select a.g, count(*), sum(b.w), max(a.s) from a join b on a.id=b.id group by a.g order by a.g;
        select count(distinct s), min(s) from a;
        """;

    // Fixed dates and no system or user config: the commit ids, and so the whole output, are the same on every run.
    private const string GitScript = """
        set -e
        export GIT_AUTHOR_DATE='2020-01-01T00:00:00Z' GIT_COMMITTER_DATE='2020-01-01T00:00:00Z' HOME="$PWD" GIT_CONFIG_NOSYSTEM=1
        rm -rf repo && git init -q repo && cd repo
        git config user.email bench@example.invalid && git config user.name bench
        for i in $(seq 1 $1); do seq 1 $((i * 300)) > f$((i % 7)).txt; printf 'line %s\n' $(seq $i $((i * 40))) > g$((i % 5)).txt; git add . && git commit -q -m "commit $i"; done
        git log -p | sha256sum
        git gc -q && git count-objects -v | grep -E '^(count|in-pack)'
        git log --stat --oneline | tail -3
        """;

    // sed reads all of its input (head would close the pipe early and make sort's write fail, depending on timing).
    private const string BashScript = """
        for i in $(seq 1 $1); do (echo sub $i; seq 1 3000 | sort -r | sed -n 1,2p) | tr a-z A-Z; done | sort | uniq -c | sort -n | tail -3
        declare -A h; for i in $(seq 1 $(($1 * 500))); do h[k$i]=$((i * i)); done; s=0; for k in "${!h[@]}"; do s=$((s + ${h[$k]} % 1000)); done; echo $s
        """;

    // make -j1 of many tiny rules, each a shell with a pipeline of two programs: the fork/exec-heavy shape of a build or of
    // configure, where every process pays the allocator's start. FORCE rebuilds every file on every run.
    private const string Makefile = """
        FILES := $(addprefix o/,$(addsuffix .txt,$(shell seq 1 $(N))))
        $(shell mkdir -p o)
        all: $(FILES)
        	@cat $(FILES) | sha256sum
        o/%.txt: FORCE
        	@printf 'rule %s\n' $* | sed 's/1/one/g' | tr a-z A-Z > $@
        FORCE:
        .PHONY: all FORCE
        """;

    /// <summary>Writes the inputs of <paramref name="names"/> into <paramref name="folder"/> and returns the programs.</summary>
    /// <param name="folder">An empty work folder (the programs run there).</param>
    /// <param name="names">Which programs, from <see cref="Names"/>.</param>
    /// <param name="quick">About a tenth of the work (for CI).</param>
    /// <exception cref="InvalidOperationException">The multi-threaded program does not compile.</exception>
    public static List<BenchProgram> Prepare(string folder, IReadOnlyList<string> names, bool quick)
    {
        var programs = new List<BenchProgram>();
        foreach (string name in names)
        {
            programs.Add(name switch
            {
                "start-true" => Make(name, $"{Starts} × /bin/true (fork, exec, exit: no malloc call)", CompileStart(folder), [Starts.ToString(CultureInfo.InvariantCulture), "/bin/true"], Tool("gcc")),
                "start-sh" => Make(name, $"{Starts} × sh -c true (dash: about 50 small mallocs)", CompileStart(folder), [Starts.ToString(CultureInfo.InvariantCulture), "sh", "-c", "true"], Tool("gcc")),
                "make" => Make(name, "make -j1 of many tiny rules, each sh | sed | tr (fork and exec)", "make",
                    ["-s", "-j1", "-f", Write(folder, "Makefile", Makefile), $"N={Scale(quick, 300, floor: 20)}"]),
                "python3" => Make(name, "PYTHONMALLOC=malloc: json dumps/loads, Counter, sort of dicts", "/usr/bin/python3",
                    [Write(folder, "p.py", PythonScript), Scale(quick, 60_000)], ("PYTHONMALLOC", "malloc")),
                "perl" => Make(name, "hash of n keys, sort, regex, substitution", "perl", [Write(folder, "p.pl", PerlScript), Scale(quick, 300_000)]),
                "sqlite3" => Make(name, "in memory: two tables, indexes, a join, a group-by", "sqlite3",
                    [":memory:", string.Format(CultureInfo.InvariantCulture, SqliteScript, Scale(quick, 300_000)).ReplaceLineEndings(" ")]),
                "git" => Make(name, "init, commits, log -p, gc in a temp repository (many processes)", "bash", [Write(folder, "git.sh", GitScript), Scale(quick, 30, floor: 3)], Tool("git")),
                "gcc" => Make(name, "gcc -O2 -S of a generated C file (cc1)", "gcc", ["-O2", "-S", "-o", "-", WriteCFile(folder, quick ? 20 : 200)]),
                "sort" => Make(name, "LC_ALL=C sort of a generated file of random lines", "sort", [WriteLines(folder, quick ? 100_000 : 1_000_000)]),
                "threads" => Make(name, "4 threads: mixed sizes, frees from another thread, realloc", CompileThreads(folder), [Scale(quick, 2000)]),
                "bash" => Make(name, "subshells, pipes and an associative array (fork and exec)", "bash", [Write(folder, "bash.sh", BashScript), Scale(quick, 40, floor: 4)]),
                _ => throw new ArgumentException($"unknown program '{name}' (known: {string.Join(", ", Names)})", nameof(names)),
            });
        }

        return programs;
    }

    private static BenchProgram Make(string name, string description, string executable, string[] arguments, params (string Name, string Value)[] environment) =>
        Make(name, description, executable, arguments, Tool(executable), environment);

    private static BenchProgram Make(string name, string description, string executable, string[] arguments, string? unavailable, params (string Name, string Value)[] environment)
    {
        var variables = environment.ToDictionary(v => v.Name, v => v.Value);
        // The C locale everywhere: sort's order and perl's and python's output must not depend on the user's locale.
        variables["LC_ALL"] = "C";
        return new BenchProgram(name, description, [executable, .. arguments], variables, unavailable ?? Tool(executable));
    }

    private static string Scale(bool quick, int full, int floor = 1) =>
        (quick ? Math.Max(full / 10, floor) : full).ToString(CultureInfo.InvariantCulture);

    /// <summary>Null when <paramref name="executable"/> is an existing path or found on PATH, else why not.</summary>
    private static string? Tool(string executable)
    {
        if (executable.Contains('/', StringComparison.Ordinal))
        {
            return File.Exists(executable) ? null : $"{executable} not found";
        }

        foreach (string dir in (Environment.GetEnvironmentVariable("PATH") ?? "/usr/bin:/bin").Split(':', StringSplitOptions.RemoveEmptyEntries))
        {
            if (File.Exists(Path.Combine(dir, executable)))
            {
                return null;
            }
        }

        return $"{executable} not found on PATH";
    }

    private static string Write(string folder, string file, string text)
    {
        string path = Path.Combine(folder, file);
        File.WriteAllText(path, text.ReplaceLineEndings("\n") + "\n");
        return path;
    }

    // Functions with loops and switches: enough for cc1's optimiser to allocate for a while.
    private static string WriteCFile(string folder, int functions)
    {
        var random = new SplitMix64(0xC0DE);
        var text = new StringBuilder();
        for (int i = 0; i < functions; i++)
        {
            text.Append(CultureInfo.InvariantCulture,
                $"int f{i}(int *a, int n) {{ int s = {i}; for (int j = 0; j < n; j++) {{ switch ((a[j] + {i}) % 5) {{ case 0: s += a[j] * {1 + random.Next(99)}; break; case 1: s ^= a[j] << {1 + random.Next(7)}; break; case 2: s -= a[j] / {1 + random.Next(9)}; break; default: s += j; }} }} return s; }}\n");
        }

        return Write(folder, "gen.c", text.ToString());
    }

    private static string WriteLines(string folder, int lines)
    {
        var random = new SplitMix64(0x5027);
        string path = Path.Combine(folder, "lines.txt");
        using var writer = new StreamWriter(path, false, new UTF8Encoding(false), 1 << 16);
        for (int i = 0; i < lines; i++)
        {
            writer.Write(((uint)random.Next()).ToString("x8", CultureInfo.InvariantCulture));
            writer.Write(' ');
            writer.Write(i.ToString(CultureInfo.InvariantCulture));
            writer.Write(' ');
            writer.Write(new string('x', (int)random.Next(41)));
            writer.Write('\n');
        }

        return path;
    }

    /// <summary>Compiles the launcher (rusage.c) into <paramref name="folder"/>; every program runs through it.</summary>
    /// <exception cref="InvalidOperationException">gcc is missing or fails.</exception>
    public static string CompileLauncher(string folder) =>
        Tool("gcc") is { } missing ? throw new InvalidOperationException($"--programs needs gcc to build its launcher: {missing}") : Compile(folder, "rusage");

    /// <summary>Compiles the misuse battery's program (misuse.c) into <paramref name="folder"/>.</summary>
    /// <exception cref="InvalidOperationException">gcc is missing or fails.</exception>
    public static string CompileMisuse(string folder) =>
        Tool("gcc") is { } missing ? throw new InvalidOperationException($"--misuse needs gcc to build its program: {missing}") : Compile(folder, "misuse");

    private static string CompileStart(string folder) => Tool("gcc") is null ? CompileOnce(folder, "start") : Path.Combine(folder, "start");

    private static string CompileOnce(string folder, string name) => File.Exists(Path.Combine(folder, name)) ? Path.Combine(folder, name) : Compile(folder, name);

    private static string CompileThreads(string folder) => Tool("gcc") is null ? Compile(folder, "threads") : Path.Combine(folder, "threads");

    // The C sources ship inside the tool (embedded resources) and are compiled with the system's gcc, without any preload.
    private static string Compile(string folder, string name)
    {
        string source = Path.Combine(folder, name + ".c");
        using (Stream resource = typeof(ProgramSet).Assembly.GetManifestResourceStream($"BuddySystem.Cli.Bench.Programs.{name}.c")
            ?? throw new InvalidOperationException($"{name}.c is missing from the tool's resources."))
        using (FileStream file = File.Create(source))
        {
            resource.CopyTo(file);
        }

        string binary = Path.Combine(folder, name);
        string errors = Path.Combine(folder, "gcc.err");
        var outcome = ProgramSpawn.Spawn(["gcc", "-O2", "-pthread", "-o", binary, source], CurrentEnvironment(), folder, Path.Combine(folder, "gcc.out"), errors);
        return outcome.ExitCode == 0
            ? binary
            : throw new InvalidOperationException($"gcc could not compile {name}.c: {File.ReadAllText(errors).Trim()}");
    }

    /// <summary>This process's environment without LD_PRELOAD (each run sets its own).</summary>
    public static Dictionary<string, string> CurrentEnvironment()
    {
        var variables = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (System.Collections.DictionaryEntry entry in Environment.GetEnvironmentVariables())
        {
            if (entry.Key is string key && entry.Value is string value && key != "LD_PRELOAD")
            {
                variables[key] = value;
            }
        }

        return variables;
    }
}
