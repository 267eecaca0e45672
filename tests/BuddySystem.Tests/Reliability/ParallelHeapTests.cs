using BuddySystem.Testing;
using CsCheck;

namespace BuddySystem.Tests.Reliability;

/// <summary>
/// Linearizability tests (CsCheck <c>SampleParallel</c>) for the thread-safe heaps: a few operations run sequentially,
/// then a few at once on several threads; the engine's abstract state (validates; live blocks, allocated and user
/// bytes) must equal the model's after some sequential order of the same operations.
/// </summary>
public class ParallelHeapTests
{
    private const nuint HeapSize = 1 << 20;

    internal static void SampleEngine(string engine, long iter = 50)
    {
        Gen.Const(() =>
            {
                var actual = new SharedHeapUnderTest(engine, HeapSize);
                return (actual, new HeapModel(HeapSize, int.MaxValue, actual.Target.BlockSize, HeapModelTests.MaxBlock));
            })
            .SampleParallel(
                [
                    Gen.Select(HeapModelTests.GenLayout, Gen.ULong).Operation<SharedHeapUnderTest, HeapModel>(
                        t => $"Allocate({t.Item1})",
                        (actual, t) => actual.Allocate(t.Item1, t.Item2 | 1),
                        (model, t) => model.Blocks.Add(t.Item1)),
                    Gen.Int[0, 1000].Operation<SharedHeapUnderTest, HeapModel>(
                        i => $"Free({i})",
                        (actual, i) => actual.Free(i),
                        (model, i) => model.Free(i)),
                ],
                equal: (actual, model) => actual.Matches(model),
                maxSequentialOperations: 10,
                maxParallelOperations: 6,
                iter: iter,
                printActual: actual => actual.ToString(),
                printModel: model => model.ToString());
    }

    /// <summary>Every thread-safe pointer engine of the registry.</summary>
    public static TheoryData<string> ThreadSafeEngines => [.. EngineCatalog.PointerHeapNames.Intersect(EngineCatalog.ThreadSafeNames)];

    [Theory]
    [MemberData(nameof(ThreadSafeEngines))]
    public void ParallelOperations_AgainstModel_AreLinearizable(string engine) => SampleEngine(engine);
}
