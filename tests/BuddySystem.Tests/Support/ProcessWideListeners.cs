namespace BuddySystem.Tests;

/// <summary>
/// Tests that enable a process-wide listener (an <see cref="System.Diagnostics.Tracing.EventListener"/> on the runtime's
/// events, a <see cref="System.Diagnostics.Metrics.MeterListener"/>) run alone: their callbacks run on whichever thread
/// raises an event and allocate there, which a parallel test that counts its own thread's GC allocations would see.
/// </summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class ProcessWideListeners
{
    /// <summary>The collection's name.</summary>
    public const string Name = "process-wide listeners";
}
