using System.Runtime.InteropServices;

namespace BuddySystem.Cli.Bench.Programs;

/// <summary>
/// Runs a program through the small launcher <c>rusage.c</c> (started with <c>posix_spawnp</c>), which forks, execs the
/// program with the allocator preloaded, reaps it with <c>wait4</c> and writes its exit code, peak resident set
/// (<c>ru_maxrss</c>: the largest of it and the children it waited for) and wall time. <see cref="Process"/> cannot
/// give a child's peak RSS, <c>getrusage(RUSAGE_CHILDREN)</c> only ever grows over a whole bench, and a child spawned
/// straight from .NET inherits the runtime's peak RSS (see rusage.c).
/// </summary>
internal static unsafe partial class ProgramSpawn
{
    private const int ORdOnly = 0;
    private const int OWrOnly = 1;
    private const int OCreat = 0x40;
    private const int OTrunc = 0x200;
    private const int EIntr = 4;

    /// <summary>What one run of a program did.</summary>
    /// <param name="ExitCode">The exit code, or 128 + the signal that ended it.</param>
    /// <param name="WallNs">Nanoseconds from the launcher's fork to its reap of the program.</param>
    /// <param name="MaxRssBytes">Peak resident set of the program (and of the children it waited for).</param>
    /// <param name="CpuNs">User + system time of the program and the children it waited for.</param>
    internal readonly record struct Outcome(int ExitCode, long WallNs, long MaxRssBytes, long CpuNs = 0);

    /// <summary>Runs <paramref name="argv"/> through <paramref name="launcher"/> in <paramref name="directory"/> with
    /// <paramref name="environment"/> and <paramref name="preload"/> as its LD_PRELOAD (null: none), standard input from
    /// /dev/null and standard output and error to the two files; waits for it.</summary>
    /// <exception cref="InvalidOperationException">The program or the launcher could not be started.</exception>
    public static Outcome Run(string launcher, string? preload, IReadOnlyList<string> argv, IReadOnlyDictionary<string, string> environment, string directory, string stdoutPath, string stderrPath)
    {
        string resultPath = stdoutPath + ".rusage";
        Outcome launched = Spawn([launcher, resultPath, preload ?? "-", .. argv], environment, directory, stdoutPath, stderrPath);
        string[] fields = launched.ExitCode == 0 && File.Exists(resultPath) ? File.ReadAllText(resultPath).Split(' ', StringSplitOptions.TrimEntries) : [];
        if (fields.Length != 4)
        {
            throw new InvalidOperationException($"the launcher could not run {argv[0]}: {File.ReadAllText(stderrPath).Trim()}");
        }

        var invariant = System.Globalization.CultureInfo.InvariantCulture;
        return new Outcome(int.Parse(fields[0], invariant), long.Parse(fields[2], invariant), long.Parse(fields[1], invariant) * 1024, long.Parse(fields[3], invariant));
    }

    /// <summary>Starts <paramref name="argv"/> (looked up on PATH) and waits for it; the outcome's RSS is not meaningful
    /// (see the class remarks), its wall time is the spawn-to-reap time.</summary>
    /// <exception cref="InvalidOperationException">The program could not be started.</exception>
    public static Outcome Spawn(IReadOnlyList<string> argv, IReadOnlyDictionary<string, string> environment, string directory, string stdoutPath, string stderrPath)
    {
        var strings = new List<nint>();
        nint* env = null;
        try
        {
            nint* args = stackalloc nint[argv.Count + 1];
            for (int i = 0; i < argv.Count; i++)
            {
                args[i] = Remember(strings, argv[i]);
            }

            args[argv.Count] = 0;
            var pairs = environment.ToList();
            env = (nint*)NativeMemory.Alloc((nuint)(pairs.Count + 1), (nuint)sizeof(nint));
            for (int i = 0; i < pairs.Count; i++)
            {
                env[i] = Remember(strings, $"{pairs[i].Key}={pairs[i].Value}");
            }

            env[pairs.Count] = 0;
            // glibc's posix_spawn_file_actions_t is 80 bytes; 256 leaves room.
            byte* actions = stackalloc byte[256];
            Check(PosixSpawnFileActionsInit(actions), "posix_spawn_file_actions_init");
            try
            {
                Check(PosixSpawnFileActionsAddOpen(actions, 0, Remember(strings, "/dev/null"), ORdOnly, 0), "addopen");
                Check(PosixSpawnFileActionsAddOpen(actions, 1, Remember(strings, stdoutPath), OWrOnly | OCreat | OTrunc, 420), "addopen");
                Check(PosixSpawnFileActionsAddOpen(actions, 2, Remember(strings, stderrPath), OWrOnly | OCreat | OTrunc, 420), "addopen");
                Check(PosixSpawnFileActionsAddChdir(actions, Remember(strings, directory)), "addchdir");
                long started = Stopwatch.GetTimestamp();
                int pid;
                int error = PosixSpawnP(&pid, args[0], actions, null, args, env);
                if (error != 0)
                {
                    throw new InvalidOperationException($"cannot start {argv[0]}: {Marshal.GetPInvokeErrorMessage(error)}");
                }

                int status;
                byte* usage = stackalloc byte[256];
                while (Wait4(pid, &status, 0, usage) < 0)
                {
                    if (Marshal.GetLastPInvokeError() != EIntr)
                    {
                        throw new InvalidOperationException($"wait4 for {argv[0]} failed: {Marshal.GetLastPInvokeErrorMessage()}");
                    }
                }

                long wall = (long)((Stopwatch.GetTimestamp() - started) * (1e9 / Stopwatch.Frequency));
                // struct rusage: two struct timevals (16 bytes each), then long ru_maxrss in KiB.
                long maxRssKiB = *(long*)(usage + 32);
                int exit = (status & 0x7F) == 0 ? (status >> 8) & 0xFF : 128 + (status & 0x7F);
                return new Outcome(exit, wall, maxRssKiB * 1024);
            }
            finally
            {
                PosixSpawnFileActionsDestroy(actions);
            }
        }
        finally
        {
            NativeMemory.Free(env);
            foreach (nint s in strings)
            {
                Marshal.FreeCoTaskMem(s);
            }
        }
    }

    private static nint Remember(List<nint> strings, string text)
    {
        nint native = Marshal.StringToCoTaskMemUTF8(text);
        strings.Add(native);
        return native;
    }

    private static void Check(int error, string call)
    {
        if (error != 0)
        {
            throw new InvalidOperationException($"{call} failed: {Marshal.GetPInvokeErrorMessage(error)}");
        }
    }

    [LibraryImport("libc", EntryPoint = "posix_spawnp")]
    private static partial int PosixSpawnP(int* pid, nint file, byte* fileActions, void* attributes, nint* argv, nint* envp);

    [LibraryImport("libc", EntryPoint = "posix_spawn_file_actions_init")]
    private static partial int PosixSpawnFileActionsInit(byte* fileActions);

    [LibraryImport("libc", EntryPoint = "posix_spawn_file_actions_destroy")]
    private static partial int PosixSpawnFileActionsDestroy(byte* fileActions);

    [LibraryImport("libc", EntryPoint = "posix_spawn_file_actions_addopen")]
    private static partial int PosixSpawnFileActionsAddOpen(byte* fileActions, int fd, nint path, int flags, int mode);

    [LibraryImport("libc", EntryPoint = "posix_spawn_file_actions_addchdir_np")]
    private static partial int PosixSpawnFileActionsAddChdir(byte* fileActions, nint path);

    [LibraryImport("libc", EntryPoint = "wait4", SetLastError = true)]
    private static partial int Wait4(int pid, int* status, int options, byte* usage);
}
