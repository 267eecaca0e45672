using System.Collections.Concurrent;
using System.Diagnostics.Tracing;

namespace BuddySystem.Tests;

[Collection(ProcessWideListeners.Name)]
public class NativeRegionPressureTests
{
    [Fact]
    public void NativeRegion_CreateAndDispose_ReportsMemoryPressureToTheGc()
    {
        // An odd size no other test uses, so the runtime's events can be matched to this region.
        const long Size = (3 << 20) + (7 * 4096);
        using var listener = new PressureListener();

        var region = new NativeRegion((nuint)Size);
        region.Dispose();
        region.Dispose();

        // The runtime delivers EventPipe events to in-process listeners asynchronously.
        var deadline = DateTime.UtcNow.AddSeconds(10);
        while ((listener.Count(PressureListener.Increase, Size) == 0 || listener.Count(PressureListener.Decrease, Size) == 0) && DateTime.UtcNow < deadline)
        {
            Thread.Sleep(50);
        }

        Assert.Equal(1, listener.Count(PressureListener.Increase, Size));
        Assert.Equal(1, listener.Count(PressureListener.Decrease, Size));
    }

    /// <summary>Listens to the runtime's IncreaseMemoryPressure (200) and DecreaseMemoryPressure (201) GC events.</summary>
    private sealed class PressureListener : EventListener
    {
        public const int Increase = 200;
        public const int Decrease = 201;

        private readonly ConcurrentQueue<(int Id, long Bytes)> _events = new();

        public int Count(int id, long bytes) => _events.Count(e => e.Id == id && e.Bytes == bytes);

        protected override void OnEventSourceCreated(EventSource eventSource)
        {
            if (eventSource.Name == "Microsoft-Windows-DotNETRuntime")
            {
                EnableEvents(eventSource, EventLevel.Verbose, (EventKeywords)0x1);
            }
        }

        protected override void OnEventWritten(EventWrittenEventArgs eventData)
        {
            if ((eventData.EventId == Increase || eventData.EventId == Decrease) && eventData.Payload is { Count: > 0 } payload)
            {
                _events.Enqueue((eventData.EventId, Convert.ToInt64(payload[0], System.Globalization.CultureInfo.InvariantCulture)));
            }
        }
    }
}
