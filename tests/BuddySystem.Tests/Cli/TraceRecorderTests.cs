using System.Diagnostics;
using BuddySystem.Cli.Traces;

namespace BuddySystem.Tests;

/// <summary>tools/trace/buddytrace.c, the LD_PRELOAD recorder of the samples' traces, built and run on a known program.</summary>
public sealed class TraceRecorderTests : IDisposable
{
    // Each call's result feeds the next, so none of them can be optimised away; nothing else in main allocates.
    private const string Program = """
        #include <stdlib.h>
        #include <malloc.h>
        #include <unistd.h>
        int main(void) {
            write(1, "", 0);
            char *p = malloc(100);
            p[0] = 1;
            char *q = realloc(p, 5000);
            void *a = NULL;
            if (posix_memalign(&a, 64, 10) != 0) return 3;
            int *c = calloc(3, 8);
            free(q);
            free(a);
            c = realloc(c, 0);
            void *big = memalign(4096, 70000);
            free(big);
            return c == NULL ? 0 : 4;
        }
        """;

    private readonly string _directory = Directory.CreateTempSubdirectory("buddy-trace-").FullName;

    public void Dispose() => Directory.Delete(_directory, recursive: true);

    [ToolFact("gcc")]
    public void Recorder_TracesEveryCall_WithIdsThatSurviveRealloc()
    {
        string tracer = Path.Combine(_directory, "buddytrace.so");
        Run("gcc", $"-O2 -shared -fPIC -o {tracer} {RepositoryFiles.Path("tools", "trace", "buddytrace.c")}");
        string source = Path.Combine(_directory, "program.c");
        File.WriteAllText(source, Program);
        string program = Path.Combine(_directory, "program");
        Run("gcc", $"-O0 -o {program} {source}");

        var start = new ProcessStartInfo(program) { UseShellExecute = false };
        start.Environment["LD_PRELOAD"] = tracer;
        start.Environment["BUDDY_TRACE"] = Path.Combine(_directory, "out");
        using (var process = Process.Start(start)!)
        {
            WaitOrKill(process, $"{program} under the recorder");
            Assert.Equal(0, process.ExitCode);
        }

        string trace = Assert.Single(Directory.GetFiles(_directory, "out.*"));
        List<TraceOp> ops = TraceReader.Read(trace).ToList();
        // The C runtime may allocate before main; main's calls are the last nine operations.
        List<TraceOp> main = ops.TakeLast(9).ToList();
        ulong p = main[0].Id, a = main[2].Id, c = main[3].Id, big = main[7].Id;
        Assert.Equal(
            [$"a {p} 100 16", $"r {p} 5000", $"a {a} 10 64", $"a {c} 24 16", $"f {p}", $"f {a}", $"f {c}", $"a {big} 70000 4096", $"f {big}"],
            main.Select(Describe));
        Assert.Equal(4, new HashSet<ulong> { p, a, c, big }.Count);
    }

    private static string Describe(TraceOp op) => op.Kind switch
    {
        TraceOpKind.Allocate => $"a {op.Id} {op.Size} {op.Align}",
        TraceOpKind.Free => $"f {op.Id}",
        _ => $"r {op.Id} {op.Size}",
    };

    private static void Run(string file, string arguments)
    {
        using var process = Process.Start(new ProcessStartInfo(file, arguments) { RedirectStandardError = true, UseShellExecute = false })!;
        Task<string> errors = process.StandardError.ReadToEndAsync();
        WaitOrKill(process, $"{file} {arguments}");
        Assert.True(process.ExitCode == 0, $"{file} {arguments} failed: {errors.Result}");
    }

    // A program that hangs is killed and fails the test, naming it, instead of hanging the run.
    private static void WaitOrKill(Process process, string what)
    {
        if (!process.WaitForExit(TimeSpan.FromMinutes(2)))
        {
            process.Kill(entireProcessTree: true);
            Assert.Fail($"{what} did not finish in 2 minutes; killed.");
        }
    }
}
