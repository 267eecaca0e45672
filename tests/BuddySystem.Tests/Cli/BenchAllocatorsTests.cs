using BuddySystem.Cli.Bench;
using BuddySystem.Testing;

namespace BuddySystem.Tests;

/// <summary>The bench's struct adapters hang off the one engine registry; these keep the two from drifting apart.</summary>
public class BenchAllocatorsTests
{
    [Fact]
    public void StructAdapterIds_EachNamesAMeasuredRegistryEngine()
    {
        Assert.All(BenchAllocators.StructAdapterIds, id => Assert.True(EngineCatalog.Find(id) is { IsMeasured: true } engine && engine.Id == id, $"{id} is not a measured engine of EngineCatalog"));
    }

    [Fact]
    public void All_IsEveryMeasuredRegistryEngineInTableOrder()
    {
        Assert.Equal(EngineCatalog.All.Where(e => e.IsMeasured).Select(e => e.Id), BenchAllocators.All.Select(a => a.Id));
    }

    [Fact]
    public void All_EveryPeerHasAStructAdapter()
    {
        // A peer has no HeapTarget to fall back on, so the bench can only run it through an adapter of its own.
        Assert.All(EngineCatalog.All.Where(e => e.IsMeasured && !e.IsTestable), peer => Assert.Contains(peer.Id, BenchAllocators.StructAdapterIds));
    }

    [Fact]
    public void All_ThreadSafetyMatchesTheRegistry()
    {
        Assert.All(BenchAllocators.All.Where(a => EngineCatalog.Find(a.Id)!.IsTestable), a => Assert.Equal(EngineCatalog.Find(a.Id)!.IsThreadSafe, a.IsThreadSafe));
    }
}
