using System.CommandLine;
using BuddySystem.Testing;

namespace BuddySystem.Cli.Commands;

/// <summary>
/// <c>buddy shm-worker FILE WORKER WORKERS OPS</c> (hidden): the child process of the shared-heap tests. It opens the
/// heap and repeatedly picks one of its own slots (index ≡ WORKER mod WORKERS) of the root area's table: an empty slot gets a patterned block by <see cref="SharedHeap.AllocateInto"/>,
/// a full one has its block's pattern checked and is freed by <see cref="SharedHeap.FreeFrom"/>. OPS = 0 runs until
/// killed (the fault-injection tests SIGKILL it). Exit 0 when done, 1 when a pattern was wrong.
/// </summary>
internal static class ShmWorkerCommand
{
    internal static Command Create()
    {
        var file = new Argument<string>("file");
        var worker = new Argument<int>("worker");
        var workers = new Argument<int>("workers");
        var ops = new Argument<long>("ops");
        var command = new Command("shm-worker", "Child process of the shared-heap tests.") { file, worker, workers, ops };
        command.Hidden = true;
        command.SetAction(result => Run(result.GetValue(file)!, result.GetValue(worker), result.GetValue(workers), result.GetValue(ops)));
        return command;
    }

    /// <summary>The size of the block kept in slot <paramref name="index"/>: 16 B to 2 KiB by index.</summary>
    internal static ulong SizeFor(int index) => 16UL << (index % 8);

    /// <summary>The pattern cookie of slot <paramref name="index"/>'s block at <paramref name="offset"/>.</summary>
    internal static ulong CookieFor(int index, ulong offset) => ((ulong)index << 40) ^ offset;

    internal static unsafe int Run(string path, int worker, int workers, long ops)
    {
        using SharedHeap heap = SharedHeap.Open(path);
        int mine = (heap.RootSize / 8) / workers;
        ulong state = (ulong)worker + (ulong)Environment.ProcessId;
        for (long op = 0; ops == 0 || op < ops; op++)
        {
            state += 0x9E3779B97F4A7C15;
            int index = ((int)(Mix(state) % (ulong)mine) * workers) + worker;
            ulong slot = heap.RootOffset + ((ulong)index * 8);
            ulong offset = Volatile.Read(ref *(ulong*)heap.Pointer(slot));
            if (offset == 0)
            {
                offset = heap.AllocateInto(SizeFor(index), 16, slot);
                BlockPattern.Fill(heap.Pointer(offset), (nuint)SizeFor(index), CookieFor(index, offset));
            }
            else
            {
                // A block allocated just before a kill has no pattern yet (the fill follows AllocateInto), so only a
                // block whose pattern was written by this run of the worker is checked: blocks whose pattern is wrong
                // are the ones a killed predecessor never filled; they are freed all the same.
                if (BlockPattern.FirstMismatch(heap.Pointer(offset), (nuint)SizeFor(index), CookieFor(index, offset)) >= 0 && ops != 0)
                {
                    Console.Error.WriteLine($"shm-worker {worker}: block {offset} of slot {index} lost its pattern");
                    return 1;
                }

                heap.FreeFrom(slot);
            }
        }

        return 0;
    }

    private static ulong Mix(ulong z)
    {
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EB;
        return z ^ (z >> 31);
    }
}
