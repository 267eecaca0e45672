namespace BuddySystem.Tests;

/// <summary>The misuse suite with the default lazy caches.</summary>
public sealed class BuddyHeapMisuseLazyTests : BuddyHeapMisuseTests
{
    public BuddyHeapMisuseLazyTests()
        : base(BuddyHeapOptions.Default)
    {
    }
}
