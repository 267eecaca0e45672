namespace BuddySystem.Tests;

/// <summary>Runs a test step on a thread of its own (a heap's other thread, or one that exits afterwards).</summary>
internal static class OtherThread
{
    /// <summary>Runs <paramref name="action"/> on a new thread and waits for it; an exception there is rethrown here, so
    /// the test fails with it instead of the test host dying of an unhandled exception on another thread.</summary>
    public static void Run(Action action) => TestThread.Start(action).Join();
}
