namespace BuddySystem.Tests.Reliability;

/// <summary>
/// A death at every step of every change to a SharedHeap, in one process: the fault-injection hook
/// (<see cref="SharedHeap.s_crashPoint"/>) throws at step K, which leaves the mapped file exactly as a SIGKILL at that
/// step would (the locks are dropped on the way out, as the kernel drops a dead process's flock); then the heap is
/// reopened, recovered and checked. K runs from 1 until the call completes, so every step is covered, and recovery is
/// itself interrupted at each of its steps.
/// </summary>
public sealed unsafe class SharedHeapCrashStepTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("shm-steps-").FullName;

    public void Dispose() => Directory.Delete(_dir, true);

    public enum Call
    {
        Allocate,
        AllocateInto,
        Free,
        FreeFrom,
    }

    [Theory]
    [InlineData(Call.Allocate)]
    [InlineData(Call.AllocateInto)]
    [InlineData(Call.Free)]
    [InlineData(Call.FreeFrom)]
    public void Crash_AtEveryStepOfACall_RecoveryKeepsTheSlotPromise(Call call)
    {
        int steps = 0;
        for (int k = 1; ; k++)
        {
            string path = Path.Combine(_dir, $"{call}-{k}");
            (ulong slot, ulong target, ulong bystander) = Prepare(path, call);
            bool crashed;
            ulong returned = 0;
            using (SharedHeap heap = SharedHeap.Open(path))
            {
                crashed = CrashAt(k, () => returned = Run(heap, call, slot, target));
            }

            if (!crashed)
            {
                steps = k - 1;
                break;
            }

            using SharedHeap recovered = SharedHeap.Open(path);
            recovered.Validate();
            var allocated = Diagnostics.HeapSnapshot.Of(recovered).Blocks
                .Where(b => b.State == Diagnostics.BlockState.Allocated).Select(b => b.Offset + recovered.DataOffset).ToHashSet();
            Assert.Contains(bystander, allocated);
            ulong slotValue = *(ulong*)recovered.Pointer(slot);
            switch (call)
            {
                case Call.AllocateInto:
                    // Rolled back whole (the slot keeps its old value, no new block) or, past the clearing of the
                    // intent, done whole.
                    Assert.True(slotValue == OldSlotValue ? allocated.Count == 1 : allocated.Count == 2 && allocated.Contains(slotValue), $"step {k}: slot {slotValue}, {allocated.Count} blocks");
                    break;
                case Call.FreeFrom:
                    Assert.True(slotValue == 0 ? allocated.Count == 1 : slotValue == target && allocated.Count == 2, $"step {k}: slot {slotValue}, {allocated.Count} blocks");
                    break;
                case Call.Allocate:
                    Assert.True(allocated.Count is 1 or 2, $"step {k}: {allocated.Count} blocks"); // may leak its one block: documented
                    break;
                default:
                    Assert.True(allocated.Count == 1 || (allocated.Count == 2 && allocated.Contains(target)), $"step {k}: {allocated.Count} blocks");
                    break;
            }
        }

        Assert.True(steps >= 5, $"{call} has only {steps} steps");
    }

    [Theory]
    [InlineData(Call.AllocateInto)]
    [InlineData(Call.FreeFrom)]
    public void Crash_AtEveryStepOfARecovery_TheNextOpenFinishesIt(Call call)
    {
        // Interrupt the call after its intent is published and its state byte written (steps 6 and 5: step 1 is just after the lock is taken), then interrupt
        // the recovery of that at each of its steps: recovery is idempotent, so the next Open must end where an
        // uninterrupted recovery ends.
        int callStep = call == Call.AllocateInto ? 6 : 5;
        int steps = 0;
        for (int k = 1; ; k++)
        {
            string path = Path.Combine(_dir, $"r{call}-{k}");
            (ulong slot, ulong target, _) = Prepare(path, call);
            using (SharedHeap heap = SharedHeap.Open(path))
            {
                Assert.True(CrashAt(callStep, () => Run(heap, call, slot, target)));
            }

            bool crashed = CrashAt(k, () => SharedHeap.Open(path).Dispose());
            using SharedHeap recovered = SharedHeap.Open(path);
            recovered.Validate();
            Assert.True(crashed || !recovered.RecoveredAtOpen, "a finished recovery left work behind"); // a death after its last step leaves none either
            Assert.Equal(1, recovered.Stats.LiveBlocks); // the bystander alone: AllocateInto rolled back, FreeFrom forward
            Assert.Equal(call == Call.AllocateInto ? OldSlotValue : 0UL, *(ulong*)recovered.Pointer(slot));
            if (!crashed)
            {
                steps = k - 1;
                break;
            }
        }

        Assert.True(steps >= 4, $"recovery has only {steps} steps");
    }

    /// <summary>A value left in the slot before AllocateInto: it must come back when the call is rolled back.</summary>
    private const ulong OldSlotValue = 0xDEAD0;

    /// <summary>A new heap with one bystander block and, for the frees, the block to free (in the slot for FreeFrom).</summary>
    private static (ulong Slot, ulong Target, ulong Bystander) Prepare(string path, Call call)
    {
        using SharedHeap heap = SharedHeap.Create(path, 64 << 10);
        ulong slot = heap.RootOffset + 8;
        ulong bystander = heap.Allocate(32);
        ulong target = call switch
        {
            Call.Free => heap.Allocate(64),
            Call.FreeFrom => heap.AllocateInto(64, 16, slot),
            _ => 0,
        };
        if (call == Call.AllocateInto)
        {
            *(ulong*)heap.Pointer(slot) = OldSlotValue;
        }

        return (slot, target, bystander);
    }

    private static ulong Run(SharedHeap heap, Call call, ulong slot, ulong target)
    {
        switch (call)
        {
            case Call.Allocate:
                return heap.Allocate(64);
            case Call.AllocateInto:
                return heap.AllocateInto(64, 16, slot);
            case Call.Free:
                heap.Free(target);
                return 0;
            default:
                heap.FreeFrom(slot);
                return 0;
        }
    }

    /// <summary>Runs <paramref name="action"/> with a death at its <paramref name="step"/>-th step on this thread (other
    /// tests' heaps on other threads pass the hook untouched); true when it died there.</summary>
    private static bool CrashAt(int step, Action action)
    {
        int thread = Environment.CurrentManagedThreadId;
        int seen = 0;
        SharedHeap.s_crashPoint = () =>
        {
            if (Environment.CurrentManagedThreadId == thread && ++seen == step)
            {
                throw new SimulatedDeathException();
            }
        };
        try
        {
            action();
            return false;
        }
        catch (SimulatedDeathException)
        {
            return true;
        }
        finally
        {
            SharedHeap.s_crashPoint = null;
        }
    }

    private sealed class SimulatedDeathException : Exception
    {
    }
}
