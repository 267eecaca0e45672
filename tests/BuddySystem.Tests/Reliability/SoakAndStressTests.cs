using BuddySystem.Cli.Commands;
using BuddySystem.Testing;

namespace BuddySystem.Tests.Reliability;

/// <summary>The CI-sized runs of <c>buddy soak</c> and <c>buddy stress</c>; the full runs are documented in docs/reliability.md.</summary>
public class SoakAndStressTests
{
    public static TheoryData<string> Engines => [.. EngineCatalog.TargetNames];

    public static TheoryData<string> ThreadSafeEngines => [.. EngineCatalog.ThreadSafeNames];

    [Fact]
    public void ThreadSafeNames_AreTheEnginesThatDeclareIt()
    {
        // The engines declare it (IAllocator.IsThreadSafe); stress, the pool and the catalog all read that one answer.
        Assert.Equal(["locked-heap", "concurrent-heap", "concurrent-heap-buddy", "concurrent-heap-hardened", "shared-heap"], EngineCatalog.ThreadSafeNames);
        foreach (string engine in EngineCatalog.TargetNames)
        {
            using HeapTarget target = EngineCatalog.CreateTarget(engine, 1 << 16);
            Assert.Equal(target.Allocator.IsThreadSafe, EngineCatalog.ThreadSafeNames.Contains(engine));
        }
    }

    [Theory]
    [MemberData(nameof(Engines))]
    public void Soak_200kOperations_AllChecksPassAndHeapMergesBack(string engine)
    {
        using HeapTarget target = EngineCatalog.CreateTarget(engine, 4 << 20);
        SoakResult result = SoakRun.Run(target, seed: 0x5EED, operations: 200_000);
        Assert.Equal(200_000, result.Operations);
        Assert.True(result.Allocations > 50_000 && result.Frees == result.Allocations, $"{result}");
        Assert.True(result.Reallocations > 10_000, $"{result}");
        Assert.Equal(201, result.Validations);
    }

    [Fact]
    public void Soak_SmallHeap_CountsFailedAllocationsAndStillMergesBack()
    {
        // 64 KiB cannot hold the 10 000-block live cap: allocations fail and the run must stay consistent through it.
        using HeapTarget target = EngineCatalog.CreateTarget("buddy-heap", 64 << 10);
        SoakResult result = SoakRun.Run(target, seed: 7, operations: 50_000);
        Assert.True(result.FailedAllocations > 0, $"{result}");
    }

    [Fact]
    public void SoakCommand_Short_PrintsOkAndExitsZero()
    {
        var output = new StringWriter();
        int exit = SoakCommand.Run(output, EngineCatalog.TargetNames, operations: 20_000, seed: 1, heapBytes: 1 << 20, validateEvery: 1000);
        Assert.Equal(0, exit);
        Assert.Equal(EngineCatalog.TargetNames.Count, output.ToString().Split(": OK").Length - 1);
    }

    [Theory]
    [MemberData(nameof(ThreadSafeEngines))]
    public void StressCommand_Small_ReportsZeroCorruptionsAndExitsZero(string engine)
    {
        var output = new StringWriter();
        int exit = StressCommand.Run(output, engine, threads: 4, scale: 5, iterations: 3, heapBytes: 64 << 20, seed: 0x5EED);
        Assert.True(exit == 0, output.ToString());
        Assert.Contains("\n0 corruptions", output.ToString(), StringComparison.Ordinal);
        Assert.Contains("ops/s", output.ToString(), StringComparison.Ordinal);
    }

    [Fact]
    public void StressRun_FourThreads_FreesOnOtherThreadsAndLeavesHeapEmpty()
    {
        using HeapTarget target = EngineCatalog.CreateTarget("locked-heap", 64 << 20);
        StressResult result = StressRun.Run(target, threads: 4, scale: 5, iterations: 2);
        Assert.Equal(0, result.Corruptions);
        Assert.True(result.Transfers > 100, $"{result}");
        Assert.Equal(result.Allocations, result.Frees);
        Assert.Equal(0ul, target.Stats.AllocatedBytes);
    }

    [Fact]
    public void StressCommand_NotThreadSafeEngine_ThrowsBadInput()
    {
        var output = new StringWriter();
        Assert.Throws<BuddySystem.Cli.BadInputException>(() => StressCommand.Run(output, "buddy-heap", 2, 1, 1, 16 << 20, 1));
    }
}
