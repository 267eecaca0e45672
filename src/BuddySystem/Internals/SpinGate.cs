using System.Diagnostics.CodeAnalysis;

namespace BuddySystem.Internals;

/// <summary>
/// A non-reentrant test-and-set lock: one compare-exchange to enter and one release store to leave. It is chosen over
/// <see cref="Lock"/> by measurement, uncontended and at 2 and 4 threads on 2 cores (docs/benchmarks.md, "The lock of
/// LockedHeap"). The crate's <c>LockedHeap</c> uses a spin lock too. Waiters spin briefly, then yield and sleep
/// (<see cref="SpinWait"/>), so a holder that is preempted does not burn the other core for long.
/// </summary>
/// <remarks>A mutable struct: keep it in a non-readonly field and call it in place. Entering twice on one thread deadlocks.</remarks>
internal struct SpinGate
{
    private int _taken;

    /// <summary>Takes the gate, waiting while another thread holds it.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void Enter()
    {
        if (Interlocked.CompareExchange(ref _taken, 1, 0) != 0)
        {
            EnterContended();
        }
    }

    /// <summary>Releases the gate; only the thread that entered may call it.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void Exit() => Volatile.Write(ref _taken, 0);

    /// <summary>Takes the gate and returns what releases it: <c>using (gate.EnterScope()) { ... }</c> holds the gate for the
    /// block and lets it go however the block ends, as <see cref="Lock.EnterScope"/> does.</summary>
    [UnscopedRef]
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public Scope EnterScope()
    {
        Enter();
        return new Scope(ref this);
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private void EnterContended()
    {
        var spinner = default(SpinWait);
        do
        {
            spinner.SpinOnce();
        }
        while (Volatile.Read(ref _taken) != 0 || Interlocked.CompareExchange(ref _taken, 1, 0) != 0);
    }

    /// <summary>A held gate; disposing it releases the gate.</summary>
    public ref struct Scope
    {
        private readonly ref SpinGate _gate;

        internal Scope(ref SpinGate gate) => _gate = ref gate;

        /// <summary>Releases the gate.</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public readonly void Dispose() => _gate.Exit();
    }
}
