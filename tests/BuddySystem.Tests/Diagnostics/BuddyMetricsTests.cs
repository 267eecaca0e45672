using System.Diagnostics.Metrics;
using System.Runtime.CompilerServices;
using BuddySystem.Diagnostics;

namespace BuddySystem.Tests;

[Collection(ProcessWideListeners.Name)]
public unsafe class BuddyMetricsTests
{
    [Fact]
    public void Register_ListenerPolls_ReadsHeapCountersWithUnitsAndTag()
    {
        using var heap = LockedHeap.Create(1 << 16);
        string name = "metrics-" + Guid.NewGuid().ToString("N");
        using IDisposable registration = BuddyMetrics.Register(heap, name);
        void* a = heap.Allocate(new Layout(100, 8));
        void* b = heap.Allocate(new Layout(1000, 8));
        Assert.True(heap.Allocate(new Layout(1 << 20, 8)) == null);

        using var recorder = new Recorder(name);
        recorder.Listener.RecordObservableInstruments();

        Assert.Equal(128 + 1024, recorder.Values["buddy.heap.allocated"]);
        Assert.Equal(1 << 16, recorder.Values["buddy.heap.total"]);
        Assert.Equal((long)heap.Stats.LargestFreeBlock, recorder.Values["buddy.heap.largest_free_block"]);
        Assert.Equal(2, recorder.Values["buddy.heap.allocations"]);
        Assert.Equal(1, recorder.Values["buddy.heap.failures"]);
        Assert.Equal((long)heap.Stats.ResidentBytes, recorder.Values["buddy.heap.resident"]);
        Assert.True(!OperatingSystem.IsLinux() || recorder.Values["buddy.heap.resident"] > 0, "a heap with live blocks has resident pages");
        Assert.Equal("By", recorder.Units["buddy.heap.resident"]);
        Assert.Equal("By", recorder.Units["buddy.heap.allocated"]);
        Assert.Equal("By", recorder.Units["buddy.heap.total"]);
        Assert.Equal("By", recorder.Units["buddy.heap.largest_free_block"]);

        heap.Deallocate(a, new Layout(100, 8));
        heap.Deallocate(b, new Layout(1000, 8));
        recorder.Listener.RecordObservableInstruments();
        Assert.Equal(0, recorder.Values["buddy.heap.allocated"]);
        // Lazy caches may keep freed blocks unmerged: the gauge reports what the engine reports.
        Assert.Equal((long)heap.Stats.LargestFreeBlock, recorder.Values["buddy.heap.largest_free_block"]);
    }

    [Fact]
    public void RegisterPool_ListenerPolls_ReadsRentedBuffersAndTheHeapBehindIt()
    {
        using var pool = Buffers.BuddyMemoryPool.Create(1 << 20);
        string name = "pool-" + Guid.NewGuid().ToString("N");
        using IDisposable registration = BuddyMetrics.Register(pool, name);
        var rented = new List<System.Buffers.IMemoryOwner<byte>> { pool.Rent(1000), pool.Rent(4000), pool.Rent(100) };

        using var recorder = new Recorder(name);
        recorder.Listener.RecordObservableInstruments();
        Assert.Equal(3, recorder.Values["buddy.pool.rented"]);
        Assert.Equal("{buffer}", recorder.Units["buddy.pool.rented"]);
        Assert.True(recorder.Values["buddy.heap.allocated"] >= 1000 + 4000 + 100);
        Assert.Equal(1 << 20, recorder.Values["buddy.heap.total"]);

        rented[0].Dispose();
        rented[2].Dispose();
        recorder.Listener.RecordObservableInstruments();
        Assert.Equal(1, recorder.Values["buddy.pool.rented"]);
        rented[1].Dispose();
        recorder.Listener.RecordObservableInstruments();
        Assert.Equal(0, recorder.Values["buddy.pool.rented"]);
    }

    [Fact]
    public void Register_NobodyListens_NeverReadsTheHeap()
    {
        var heap = new CountingStatsSource();
        using (BuddyMetrics.Register(heap, "quiet-" + Guid.NewGuid().ToString("N")))
        {
            Assert.Equal(0, heap.Reads);

            using var recorder = new Recorder("nobody");
            recorder.Listener.RecordObservableInstruments();
            recorder.Listener.RecordObservableInstruments();

            // Two polls of six instruments each: one snapshot per poll, not one per instrument.
            Assert.Equal(2, heap.Reads);
        }
    }

    [Fact]
    public void Registration_Disposed_StopsMeasurements()
    {
        using var heap = LockedHeap.Create(4096);
        string name = "gone-" + Guid.NewGuid().ToString("N");
        IDisposable registration = BuddyMetrics.Register(heap, name);
        registration.Dispose();
        registration.Dispose();
        using var recorder = new Recorder(name);
        recorder.Listener.RecordObservableInstruments();
        Assert.Empty(recorder.Values);
    }

    [Fact]
    public void Register_HeapDisposedOrCollected_DroppedAtNextPoll()
    {
        string name = "dropped-" + Guid.NewGuid().ToString("N");
        var disposed = LockedHeap.Create(4096);
        IDisposable first = BuddyMetrics.Register(disposed, name);
        disposed.Dispose();
        IDisposable second = RegisterUnreachableHeap(name);
        GC.Collect();
        GC.WaitForPendingFinalizers();
        GC.Collect();

        using var recorder = new Recorder(name);
        recorder.Listener.RecordObservableInstruments();
        Assert.Empty(recorder.Values);
        first.Dispose();
        second.Dispose();
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static IDisposable RegisterUnreachableHeap(string name) => BuddyMetrics.Register(new CountingStatsSource(), name);

    private sealed class CountingStatsSource : IHeapStatsSource
    {
        public int Reads { get; private set; }

        public HeapStats Stats
        {
            get
            {
                Reads++;
                return new HeapStats { TotalBytes = 4096, LargestFreeBlock = 4096 };
            }
        }
    }

    /// <summary>Collects the latest value of each BuddySystem instrument for one heap name.</summary>
    private sealed class Recorder : IDisposable
    {
        public Recorder(string heapName)
        {
            Listener.InstrumentPublished = (instrument, listener) =>
            {
                if (instrument.Meter.Name == BuddyMetrics.MeterName)
                {
                    Units[instrument.Name] = instrument.Unit;
                    listener.EnableMeasurementEvents(instrument);
                }
            };
            Listener.SetMeasurementEventCallback<long>((instrument, value, tags, _) =>
            {
                foreach (KeyValuePair<string, object?> tag in tags)
                {
                    if (tag.Key == BuddyMetrics.HeapNameTag && (string?)tag.Value == heapName)
                    {
                        Values[instrument.Name] = value;
                    }
                }
            });
            Listener.Start();
        }

        public MeterListener Listener { get; } = new();

        public Dictionary<string, long> Values { get; } = [];

        public Dictionary<string, string?> Units { get; } = [];

        public void Dispose() => Listener.Dispose();
    }
}
