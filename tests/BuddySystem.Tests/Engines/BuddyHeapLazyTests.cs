namespace BuddySystem.Tests;

/// <summary>The engine suite with the default lazy caches.</summary>
public sealed class BuddyHeapLazyTests : BuddyHeapTests
{
    protected override BuddyHeapOptions Options => BuddyHeapOptions.Default;
}
