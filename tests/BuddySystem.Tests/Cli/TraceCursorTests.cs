using System.Text;
using BuddySystem.Cli.Bench;
using BuddySystem.Cli.Replay;
using BuddySystem.Cli.Traces;
using BuddySystem.Testing;

namespace BuddySystem.Tests;

/// <summary>map and explore step through a trace with <see cref="TraceCursor"/>; it must follow replay's own rules.</summary>
public sealed class TraceCursorTests
{
    private static CompiledTrace Compile(string text)
        => CompiledTrace.Compile(TraceReader.Read(new MemoryStream(Encoding.UTF8.GetBytes(text)), "t"), "t");

    [Fact]
    public void StepToEnd_SmallHeap_FailsExactlyAsTheTimedReplayDoes()
    {
        var text = new StringBuilder();
        var random = new Random(7);
        for (int id = 1; id <= 400; id++)
        {
            text.Append($"a {id} {random.Next(1, 3000)} 16\n");
            if (id % 3 == 0)
            {
                text.Append($"r {id} {random.Next(1, 6000)}\n");
            }

            if (id % 2 == 0)
            {
                text.Append($"f {id - 1}\n");
            }
        }

        CompiledTrace trace = Compile(text.ToString());
        using var cursor = new TraceCursor(trace, 64 << 10, BuddyHeapOptions.Default);
        cursor.StepToEnd();

        var allocator = TargetAllocator.Of(HeapTarget.Of("buddy-heap", BuddyHeap.Create(64 << 10)));
        ReplayPass timed = TraceReplayer.RunTimed(ref allocator, trace);
        allocator.Dispose();

        Assert.True(cursor.FailedAllocations > 0);
        Assert.Equal(timed.Failed, cursor.FailedAllocations);
        Assert.Equal(trace.Steps.Length, cursor.Done);
        cursor.Heap.Validate();
    }

    [Fact]
    public void Step_ReallocateOfAFailedAllocation_AllocatesAsReallocOfNullDoes()
    {
        // 4 KiB heap: the 8000-byte allocation fails, then its reallocate to 100 bytes is served (realloc(NULL, 100)).
        using var cursor = new TraceCursor(Compile("a 1 8000 16\nr 1 100\nf 1\n"), 4096, BuddyHeapOptions.Eager);

        Assert.True(cursor.Step().Failed);
        var reallocated = cursor.Step();
        Assert.False(reallocated.Failed);
        Assert.NotNull(reallocated.Offset);
        Assert.Equal(100ul, cursor.LiveBytes);
        Assert.False(cursor.Step().Skipped);
        Assert.Equal(0ul, cursor.Heap.Stats.AllocatedBytes);
    }

    [Fact]
    public void Compile_FreeOfADeadId_IsRejectedBeforeAnyStep()
        => Assert.Throws<TraceFormatException>(() => Compile("a 1 8 8\nf 1\nf 1\n"));
}
