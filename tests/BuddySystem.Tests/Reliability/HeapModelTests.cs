using BuddySystem.Testing;
using CsCheck;

namespace BuddySystem.Tests.Reliability;

/// <summary>
/// Model-based tests (CsCheck <c>SampleModelBased</c>): random sequences of allocate, free, reallocate, add-region and
/// impossible allocations run on an engine and on <see cref="HeapModel"/>; after every operation the engine must
/// validate and agree with the model. A failure shrinks to a short sequence and prints the seed to replay it.
/// </summary>
public class HeapModelTests
{
    /// <summary>The largest block the operations ask for (4 KiB); see <see cref="HeapModel.GuaranteedBlocks"/>.</summary>
    internal const ulong MaxBlock = 4096;

    private const nuint HeapSize = 1 << 20;

    internal static readonly Gen<Layout> GenLayout =
        Gen.Select(Gen.Int[0, 11], Gen.ULong, Gen.Int[0, 5], (e, extra, a) => new Layout((nuint)((1UL << e) + (extra % (1UL << e)) - 1), (nuint)1 << a));

    internal static GenOperation<HeapUnderTest, HeapModel>[] Operations(bool addRegions)
    {
        var operations = new List<GenOperation<HeapUnderTest, HeapModel>>
        {
            Gen.Select(GenLayout, Gen.ULong).Operation<HeapUnderTest, HeapModel>(
                t => $"Allocate({t.Item1})",
                (actual, t) =>
                {
                    if (actual.HasRoom)
                    {
                        actual.Allocate(t.Item1, t.Item2 | 1);
                    }
                },
                (model, t) =>
                {
                    if (model.HasRoom)
                    {
                        model.Blocks.Add(t.Item1);
                    }
                }),
            Gen.Int[0, 1000].Operation<HeapUnderTest, HeapModel>(
                i => $"Free({i})",
                (actual, i) => actual.Free(i),
                (model, i) => model.Free(i)),
            Gen.Select(Gen.Int[0, 1000], GenLayout, Gen.ULong).Operation<HeapUnderTest, HeapModel>(
                t => $"Reallocate({t.Item1}, {t.Item2.Size})",
                (actual, t) =>
                {
                    if (actual.HasRoom)
                    {
                        actual.Reallocate(t.Item1, t.Item2.Size, t.Item3 | 1);
                    }
                },
                (model, t) =>
                {
                    if (model.HasRoom)
                    {
                        model.Reallocate(t.Item1, t.Item2.Size);
                    }
                }),
            Gen.Operation<HeapUnderTest, HeapModel>(
                "AllocateTooLarge()",
                actual => actual.AllocateTooLarge(),
                _ => { }),
        };
        if (addRegions)
        {
            operations.Add(Gen.Select(Gen.Int[1, 64], Gen.Int[0, 15]).Operation<HeapUnderTest, HeapModel>(
                t => $"AddRegion({t.Item1} KiB + {t.Item2})",
                (actual, t) => actual.AddRegion((nuint)t.Item1 << 10, t.Item2),
                (model, t) => model.AddRegion((nuint)t.Item1 << 10, t.Item2)));
        }

        return [.. operations];
    }

    internal static void SampleEngine(string engine, bool addRegions, long iter = 150)
    {
        // The engine's placement chunk sets the guarantee: 4 KiB blocks for a buddy engine, a 64 KiB slab for a slab
        // engine, whose heap is made larger so that the model still reaches a few dozen live blocks.
        ulong chunk;
        using (HeapTarget probe = EngineCatalog.CreateTarget(engine, 4096))
        {
            chunk = probe.PlacementChunk(new Layout((nuint)MaxBlock - 1, 32));
        }

        nuint heapSize = (nuint)Math.Max(HeapSize, 64 * chunk);
        int chunks = (int)(heapSize / chunk);
        // CsCheck never disposes the states it makes, and an undisposed ConcurrentHeap stays reachable (through the thread
        // caches of the thread that used it) long after the regions AddRegion gave it were finalized: its trimming after a
        // full collection then writes into freed memory. One sample runs at a time (threads: 1), so each state is
        // disposed when the next one is made, and the last one at the end.
        HeapUnderTest? previous = null;
        try
        {
            Gen.Const(() =>
                {
                    previous?.Dispose();
                    var actual = new HeapUnderTest(engine, heapSize, chunks, chunk);
                    previous = actual;
                    return (actual, new HeapModel(heapSize, chunks, actual.Target.BlockSize, chunk));
                })
                .SampleModelBased(
                    Operations(addRegions),
                    equal: (actual, model) => actual.Matches(model),
                    iter: iter,
                    threads: 1,
                    printActual: actual => actual.ToString(),
                    printModel: model => model.ToString());
        }
        finally
        {
            previous?.Dispose();
        }
    }

    /// <summary>Every pointer engine of the registry.</summary>
    public static TheoryData<string> PointerEngines => [.. EngineCatalog.PointerHeapNames];

    [Theory]
    [MemberData(nameof(PointerEngines))]
    public void RandomOperations_AgainstModel_AgreeAndValidate(string engine) => SampleEngine(engine, addRegions: true);

    [Theory]
    [InlineData("concurrent-heap")]
    [InlineData("concurrent-heap-buddy")]
    public void SampleEngine_ConcurrentHeapWithRegions_DisposesEveryHeapItMade(string engine)
    {
        // An undisposed ConcurrentHeap stays reachable through the thread caches of the thread that used it, and trims after
        // every full collection on the finalizer thread; once the thread has exited that writes its slabs back into regions
        // whose NativeRegions were finalized with their HeapUnderTest: the test host then crashed in FreeAndMerge, or hung.
        // The tests of this class run one at a time, so nothing else makes or disposes a HeapUnderTest meanwhile.
        int before = HeapUnderTest.Undisposed;
        SampleEngine(engine, addRegions: true, iter: 20);
        Assert.Equal(before, HeapUnderTest.Undisposed);
    }

    [Theory]
    [InlineData("buddy-tree")]
    [InlineData("frame-allocator")]
    public void RandomOperations_OffsetEngines_AgreeAndValidate(string engine) => SampleEngine(engine, addRegions: false);
}
