namespace BuddySystem.Tests;

/// <summary>The engine suite with eager merging (the tutorial's algorithm).</summary>
public sealed class BuddyHeapEagerTests : BuddyHeapTests
{
    protected override BuddyHeapOptions Options => BuddyHeapOptions.Eager;
}
