namespace BuddySystem.Tests;

/// <summary>The misuse suite with eager merging.</summary>
public sealed class BuddyHeapMisuseEagerTests : BuddyHeapMisuseTests
{
    public BuddyHeapMisuseEagerTests()
        : base(BuddyHeapOptions.Eager)
    {
    }
}
