using System.Diagnostics.Metrics;

namespace BuddySystem.Diagnostics;

/// <summary>
/// Publishes registered heaps on the <see cref="Meter"/> named <c>BuddySystem</c>, for <c>dotnet-counters</c>,
/// OpenTelemetry or a <see cref="MeterListener"/>.
/// </summary>
/// <remarks>
/// <para><b>Instruments</b>, each tagged <c>buddy.heap.name</c>: observable gauges <c>buddy.heap.allocated</c> (bytes in live
/// blocks), <c>buddy.heap.total</c> (bytes under management), <c>buddy.heap.largest_free_block</c> (unit <c>By</c>), and
/// observable counters <c>buddy.heap.allocations</c> and <c>buddy.heap.failures</c> (allocations served and refused since the
/// heap was created); for a pool registered with <see cref="Register(Buffers.BuddyMemoryPool, string)"/>, also the observable
/// gauge <c>buddy.pool.rented</c> (buffers rented and not yet returned, unit <c>{buffer}</c>).</para>
/// <para><b>Cost.</b> Nothing is added to any allocation path: the instruments are observable, so a heap is read only when a
/// listener polls, through its <see cref="IHeapStatsSource.Stats"/> (O(free blocks) for <see cref="BuddyHeap"/>). One
/// snapshot serves all five instruments of a poll. With no listener, registering is the only cost.</para>
/// <para><b>Bounds.</b> At most <see cref="MaxRegistrations"/> heaps at once. A registration holds its heap weakly, so a
/// forgotten registration does not keep a heap alive; it is dropped once the heap is collected or disposed.</para>
/// <para>Thread safety: every member is safe from any thread. The heap's <c>Stats</c> is read on the listener's thread,
/// so register only heaps whose <c>Stats</c> is thread-safe (<see cref="LockedHeap"/>), or poll from the heap's own thread.</para>
/// </remarks>
public static class BuddyMetrics
{
    /// <summary>The meter's name: <c>BuddySystem</c> (<c>dotnet-counters monitor --counters BuddySystem</c>).</summary>
    public const string MeterName = "BuddySystem";

    /// <summary>The tag naming the heap on every measurement: <c>buddy.heap.name</c>.</summary>
    public const string HeapNameTag = "buddy.heap.name";

    /// <summary>Heaps that may be registered at once.</summary>
    public const int MaxRegistrations = 1024;

    private static readonly Lock s_lock = new();
    private static readonly List<HeapRegistration> s_registrations = [];
    // Created on first use of this class, so a process that never registers a heap has no meter at all.
    private static readonly Meter s_meter = CreateMeter();

    /// <summary>Publishes <paramref name="heap"/> under <paramref name="name"/> until the returned registration is disposed.</summary>
    /// <param name="heap">The heap; held weakly. Its <c>Stats</c> must be safe to read from the listener's thread.</param>
    /// <param name="name">The value of the <c>buddy.heap.name</c> tag.</param>
    /// <returns>Dispose it to stop publishing the heap; disposing twice is harmless.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="heap"/> or <paramref name="name"/> is null.</exception>
    /// <exception cref="InvalidOperationException"><see cref="MaxRegistrations"/> heaps are registered already.</exception>
    public static IDisposable Register(IHeapStatsSource heap, string name)
    {
        ArgumentNullException.ThrowIfNull(heap);
        ArgumentNullException.ThrowIfNull(name);
        return Add(new HeapRegistration(heap, null, name));
    }

    /// <summary>
    /// Publishes <paramref name="pool"/> under <paramref name="name"/> until the returned registration is disposed: its
    /// buffers rented and not returned (<c>buddy.pool.rented</c>) and, when its <see cref="Buffers.BuddyMemoryPool.Allocator"/>
    /// keeps statistics (<see cref="IHeapStatsSource"/>, as every engine of this library does), its heap's instruments.
    /// </summary>
    /// <param name="pool">The pool; held weakly.</param>
    /// <param name="name">The value of the <c>buddy.heap.name</c> tag.</param>
    /// <returns>Dispose it to stop publishing the pool; disposing twice is harmless.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="pool"/> or <paramref name="name"/> is null.</exception>
    /// <exception cref="InvalidOperationException"><see cref="MaxRegistrations"/> heaps or pools are registered already.</exception>
    public static IDisposable Register(Buffers.BuddyMemoryPool pool, string name)
    {
        ArgumentNullException.ThrowIfNull(pool);
        ArgumentNullException.ThrowIfNull(name);
        return Add(new HeapRegistration(pool.Allocator as IHeapStatsSource, pool, name));
    }

    private static HeapRegistration Add(HeapRegistration registration)
    {
        lock (s_lock)
        {
            if (s_registrations.Count >= MaxRegistrations)
            {
                s_registrations.RemoveAll(r => !r.IsAlive);
                if (s_registrations.Count >= MaxRegistrations)
                {
                    ThrowHelper.ThrowInvalidOperation($"BuddyMetrics holds {MaxRegistrations} heaps already; dispose registrations that are no longer needed.");
                }
            }

            s_registrations.Add(registration);
        }

        return registration;
    }

    /// <summary>Heaps registered now (including ones collected or disposed but not yet noticed by a poll).</summary>
    public static int RegisteredHeaps
    {
        get
        {
            lock (s_lock)
            {
                return s_registrations.Count;
            }
        }
    }

    internal static void Unregister(HeapRegistration registration)
    {
        lock (s_lock)
        {
            s_registrations.Remove(registration);
        }
    }

    private static Meter CreateMeter()
    {
        var meter = new Meter(MeterName);
        meter.CreateObservableGauge("buddy.heap.allocated", () => Observe(0, static s => (long)s.AllocatedBytes), "By", "Bytes in live blocks: requested bytes plus internal fragmentation.");
        meter.CreateObservableGauge("buddy.heap.total", () => Observe(1, static s => (long)s.TotalBytes), "By", "Bytes under the heap's management.");
        meter.CreateObservableGauge("buddy.heap.largest_free_block", () => Observe(2, static s => (long)s.LargestFreeBlock), "By", "The largest block the heap can hand out now.");
        meter.CreateObservableCounter("buddy.heap.allocations", () => Observe(3, static s => s.Allocations), "{allocation}", "Allocations served since the heap was created.");
        meter.CreateObservableCounter("buddy.heap.failures", () => Observe(4, static s => s.FailedAllocations), "{allocation}", "Allocations refused (null returned) since the heap was created.");
        meter.CreateObservableGauge("buddy.heap.resident", () => Observe(5, static s => (long)s.ResidentBytes), "By", "Bytes of the heap's memory resident in RAM now (Linux; 0 elsewhere): falls when Trim gives pages back.");
        meter.CreateObservableGauge("buddy.pool.rented", ObserveRented, "{buffer}", "Buffers rented from the pool and not yet returned.");
        return meter;
    }

    private static HeapRegistration[] RegistrationsNow()
    {
        lock (s_lock)
        {
            return [.. s_registrations];
        }
    }

    private static List<Measurement<long>> ObserveRented()
    {
        HeapRegistration[] registrations = RegistrationsNow();
        var measurements = new List<Measurement<long>>();
        foreach (HeapRegistration registration in registrations)
        {
            if (registration.RentedBuffers is long rented)
            {
                measurements.Add(new Measurement<long>(rented, registration.Tags));
            }
        }

        return measurements;
    }

    private static List<Measurement<long>> Observe(int instrument, Func<HeapStats, long> read)
    {
        HeapRegistration[] registrations = RegistrationsNow();
        var measurements = new List<Measurement<long>>(registrations.Length);
        foreach (HeapRegistration registration in registrations)
        {
            if (!registration.HasHeap)
            {
                if (!registration.IsAlive)
                {
                    Unregister(registration);
                }

                continue;
            }

            HeapStats? stats = registration.Snapshot(instrument);
            if (stats is null)
            {
                // The heap was collected or disposed: stop asking.
                Unregister(registration);
                continue;
            }

            measurements.Add(new Measurement<long>(read(stats), registration.Tags));
        }

        return measurements;
    }
}
