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
        // CsCheck never disposes the states it makes (samples may run on several threads at once): every one is disposed
        // at the end, so no heap is left undisposed for its trimming after full collections to run on.
        var made = new List<SharedHeapUnderTest>();
        try
        {
            Gen.Const(() =>
                {
                    var actual = new SharedHeapUnderTest(engine, HeapSize);
                    lock (made)
                    {
                        made.Add(actual);
                    }

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
        finally
        {
            foreach (SharedHeapUnderTest actual in made)
            {
                actual.Dispose();
            }
        }
    }

    /// <summary>Every thread-safe pointer engine of the registry.</summary>
    public static TheoryData<string> ThreadSafeEngines => [.. EngineCatalog.PointerHeapNames.Intersect(EngineCatalog.ThreadSafeNames)];

    [Theory]
    [MemberData(nameof(ThreadSafeEngines))]
    public void ParallelOperations_AgainstModel_AreLinearizable(string engine) => SampleEngine(engine);

    [Fact]
    public void SampleEngine_ConcurrentHeap_DisposesEveryHeapItMade()
    {
        // As HeapModelTests' test of the same name: CsCheck leaves its states to the caller, and a ConcurrentHeap left
        // undisposed keeps trimming after every full collection for as long as any thread that used it lives.
        int before = SharedHeapUnderTest.Undisposed;
        SampleEngine("concurrent-heap", iter: 10);
        Assert.Equal(before, SharedHeapUnderTest.Undisposed);
    }
}
