using BuddySystem.Cli.Commands;
using BuddySystem.Testing;

namespace BuddySystem.Tests;

/// <summary>The engines a command names come from the one registry (EngineCatalog).</summary>
public class CommandEnginesTests
{
    [Fact]
    public void MapEngines_AreTheRegistryEnginesThatListTheirBlocksAndTheSegmentTree()
    {
        Assert.Equal([.. EngineCatalog.All.Where(e => e.CanSnapshot || e.Id == "buddy-tree").Select(e => e.Id)], MapCommand.Engines);
        Assert.Contains("slab-heap", MapCommand.Engines);
        Assert.Contains("concurrent-heap", MapCommand.Engines);
    }

    [Fact]
    public void ExploreEngines_AreRegistryEngines()
    {
        Assert.All(ExploreCommand.Engines, id => Assert.NotNull(EngineCatalog.Find(id)));
    }
}
