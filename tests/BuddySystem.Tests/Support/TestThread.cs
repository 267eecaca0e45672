using System.Runtime.ExceptionServices;

namespace BuddySystem.Tests;

/// <summary>
/// A thread of a test whose exception (a failed <c>Assert</c> included) is kept and rethrown on the test's own thread when it
/// is joined. An exception left unhandled on a raw <see cref="Thread"/> kills the test host: the whole run is lost as "Test
/// Run Aborted" without the cause. Tests start their extra threads through this type (or <see cref="OtherThread.Run"/>),
/// never with <c>new Thread</c>.
/// </summary>
internal sealed class TestThread
{
    /// <summary>How long <see cref="Join(TimeSpan?)"/> waits by default: far beyond any test's normal run on a loaded
    /// machine, and below the test host's hang timeout (10 minutes, in tests/Directory.Build.props), so a hung thread fails
    /// its own test instead of aborting the run.</summary>
    public static readonly TimeSpan DefaultJoinTimeout = TimeSpan.FromMinutes(5);

    private readonly Thread _thread;
    private ExceptionDispatchInfo? _failure;

    private TestThread(Action action, string? name)
    {
        // A background thread: one that hangs after its test failed does not keep the test host alive.
        _thread = new Thread(() =>
        {
            try
            {
                action();
            }
            catch (Exception caught)
            {
                _failure = ExceptionDispatchInfo.Capture(caught);
            }
        })
        {
            IsBackground = true,
            Name = name,
        };
    }

    /// <summary>The exception the thread ended with, or null (so far).</summary>
    public Exception? Failure => _failure?.SourceException;

    /// <summary>Creates a thread that will run <paramref name="action"/>; call <see cref="Start"/>.</summary>
    public static TestThread Create(Action action, string? name = null) => new(action, name);

    /// <summary>Starts a thread that runs <paramref name="action"/>.</summary>
    public static TestThread Start(Action action, string? name = null)
    {
        TestThread thread = Create(action, name);
        thread.Start();
        return thread;
    }

    /// <summary>Starts the thread.</summary>
    public void Start() => _thread.Start();

    /// <summary>Waits for the thread and rethrows here the exception it ended with.</summary>
    /// <param name="timeout"><see cref="DefaultJoinTimeout"/> when null.</param>
    /// <exception cref="TimeoutException">The thread was still running after <paramref name="timeout"/> without having failed.</exception>
    public void Join(TimeSpan? timeout = null) => JoinAll([this], timeout);

    /// <summary>Waits for every thread (within one deadline) and rethrows the first exception any of them ended with;
    /// several failures are rethrown as one <see cref="AggregateException"/>.</summary>
    /// <param name="threads">Started threads.</param>
    /// <param name="timeout">For all of them together; <see cref="DefaultJoinTimeout"/> when null.</param>
    /// <exception cref="TimeoutException">A thread was still running at the deadline and none had failed (a thread that failed
    /// may leave the others waiting at a barrier: its exception is reported, not the timeout).</exception>
    public static void JoinAll(IEnumerable<TestThread> threads, TimeSpan? timeout = null)
    {
        List<TestThread> all = [.. threads];
        long deadline = Environment.TickCount64 + (long)(timeout ?? DefaultJoinTimeout).TotalMilliseconds;
        var running = new List<TestThread>();
        foreach (TestThread thread in all)
        {
            if (!thread._thread.Join(TimeSpan.FromMilliseconds(Math.Max(0, deadline - Environment.TickCount64))))
            {
                running.Add(thread);
            }
        }

        List<ExceptionDispatchInfo> failures = [.. all.Select(t => t._failure).OfType<ExceptionDispatchInfo>()];
        if (failures.Count == 1)
        {
            failures[0].Throw();
        }

        if (failures.Count > 1)
        {
            throw new AggregateException($"{failures.Count} test threads failed.", failures.Select(f => f.SourceException));
        }

        if (running.Count > 0)
        {
            throw new TimeoutException($"{running.Count} of {all.Count} test threads still running after {timeout ?? DefaultJoinTimeout}.");
        }
    }
}
