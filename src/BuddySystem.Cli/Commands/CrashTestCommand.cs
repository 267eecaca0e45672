namespace BuddySystem.Cli.Commands;

/// <summary>
/// <c>buddy crash-test CASE</c> (hidden): commits one memory error on a hardened heap with the default corruption handler,
/// so that the process must die with SIGABRT and the message prefix <see cref="HeapCorruptionException.Prefix"/>. The
/// death tests (tests/…/Reliability/DeathTests.cs) run it as a child process; exit code 3 means the error went unnoticed.
/// </summary>
internal static class CrashTestCommand
{
    internal static readonly string[] Cases = ["write-after-free", "overflow", "leak"];

    internal static Command Create()
    {
        var which = new Argument<string>("case") { Description = string.Join(" | ", Cases) };
        which.AcceptOnlyFromAmong(Cases);
        var command = new Command("crash-test", "Commit one memory error on a hardened heap; the process must abort.") { which };
        command.Hidden = true;
        command.SetAction(result => Run(Console.Out, result.GetValue(which)!));
        return command;
    }

    internal static unsafe int Run(TextWriter output, string which)
    {
        var options = BuddyHeapOptions.Default with { Hardening = new HeapHardeningOptions { CaptureAllocationStacks = which == "leak" } };
        using var heap = BuddyHeap.Create(1 << 16, options);
        var layout = new Layout(50, 8);
        byte* block = (byte*)heap.Allocate(layout);
        switch (which)
        {
            case "write-after-free":
                heap.Deallocate(block, layout);
                block[32] = 0x42; // the bug: a write through a dangling pointer
                output.WriteLine("wrote 1 byte after free; allocating again (must abort)");
                output.Flush();
                heap.Allocate(layout);
                break;
            case "overflow":
                block[50] = 0x42; // the bug: one byte past the 50 requested
                output.WriteLine("wrote 1 byte past the end; freeing (must abort)");
                output.Flush();
                heap.Deallocate(block, layout);
                break;
            default:
                output.WriteLine("disposing the heap with one live block (must report it)");
                return 0; // the using disposes the heap, which reports the leak on standard error
        }

        output.WriteLine("the memory error was not detected");
        return 3;
    }
}
