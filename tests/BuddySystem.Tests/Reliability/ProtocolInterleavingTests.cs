using System.Globalization;
using Xunit.Abstractions;

namespace BuddySystem.Tests.Reliability;

/// <summary>
/// Exhaustive interleaving proofs of the free protocol for slab objects under x86-TSO. An object may be freed by its
/// slab's owner thread or by a remote thread, and double frees are detected. These tests check a model of the protocol
/// (<see cref="TsoProtocolModel"/>), not the heap's code.
/// <para>
/// The model. Each simulated thread runs a short program of calls (free, alloc, collect). A call is split into steps, one
/// per memory instruction. Owner-private work (LOCAL, Used) is folded into a neighbouring step, since no other thread sees it. Memory
/// is x86-TSO: every thread has a FIFO store buffer. A plain store, which is also x86's release store, goes into the
/// buffer. A plain load reads the newest buffered store to its location in the own buffer, else memory. Moving the
/// oldest entry of any thread's buffer to memory is a step of its own, and the scheduler may take it at any point. A
/// locked instruction (XCHG, CAS, the THREADFREE push and take-all) first drains its thread's buffer, then runs
/// atomically on memory. A depth-first search takes every enabled step, thread steps and flushes alike, in every state. A
/// state is the program counters, locals, store buffers, memory, LOCAL, THREADFREE, Used and the ghost state; states are
/// memoised, so each one is explored once. Each test prints how many complete schedules (distinct step sequences) it
/// covered, counted over the state graph. After every thread has finished, the owner runs a final collect; once every
/// buffer is flushed, the properties are checked. A violation is shown as a shortest schedule that leads to it.
/// </para>
/// <para>
/// The properties, for each scenario and exactly these programs:
/// (P1) No object is handed out twice, and LOCAL never holds an object twice or an object that is handed out.
/// (P2) Each free call belongs to the object's generation at its linearisation point: the owner's load of M, the remote's
/// XCHG, or the remote's pre-check load when that load reports. The generation changes at the allocation's load of M
/// (or at its failed CAS(M, 1 -> 2), the access that finds M back at 0).
/// Each generation has at most one unreported free. A program that frees an object once gets no report.
/// (P3) Used equals the number of objects handed out. At quiescence every object is on LOCAL or handed out, never both;
/// THREADFREE is empty; and S and M are clean.
/// (P4) Each double free is reported exactly once.
/// (P5) A remote free is named at the call when its XCHG claims a free object whose release (S != LIVE) has already
/// reached memory.
/// </para>
/// <para>
/// Results. The protocol as specified satisfies P1, P2, P3 and P5 in scenarios a to e. It does not satisfy P4: when the
/// pop acknowledges a remote's claim and the remote then finds M = 2, the double free is reported twice.
/// It also does not satisfy P3 in scenario f: a second remote's XCHG overwrites the owner's M = 2, the first remote's
/// CAS(M, 1 -> 0) then succeeds, and the quarantined object is lost. With the remote claiming by CAS(M, 0 -> 1), P1, P2,
/// P3 and P5 hold in every scenario.
/// The checker catches all three broken variants: a pop without the M check, a collect without the S check, and a
/// remote free without the re-read. The first two break P1 to P3. The missing re-read breaks only P5, because the
/// collect and the pop still handle every pushed object safely.
/// </para>
/// <para>
/// Not proven: other programs; more threads or objects than these scenarios have; the heap's real code, since only this
/// model of the protocol is checked. Weaker memory models are not enumerated either. On ARM64, loads and stores to
/// different locations may be reordered in ways TSO forbids. There the protocol needs explicit acquire/release ordering
/// and a separate argument.
/// </para>
/// <para>
/// Credit: the store-buffer semantics is the x86-TSO model of P. Sewell, S. Sarkar, S. Owens, F. Zappa Nardelli and
/// M. O. Myreen, "x86-TSO: A Rigorous and Usable Programmer's Model for x86 Multiprocessors", CACM 53(7), 2010.
/// </para>
/// </summary>
public class ProtocolInterleavingTests(ITestOutputHelper output)
{
    private static ProtocolStep Free(int obj) => ProtocolStep.Free(obj);

    private static ProtocolStep Alloc => ProtocolStep.Alloc;

    private static ProtocolStep Collect => ProtocolStep.Collect;

    /// <summary>(a) The owner frees o while a remote frees it; the owner also collects meanwhile.</summary>
    internal static ProtocolScenario OwnerAndRemote { get; } = new("a: owner free(o), collect || remote free(o)", 1, [Free(0), Collect], [Free(0)]);

    /// <summary>(b) Two remotes free o at once while the owner collects.</summary>
    internal static ProtocolScenario TwoRemotes { get; } = new("b: owner collect || remote1 free(o) || remote2 free(o)", 1, [Collect], [Free(0)], [Free(0)]);

    /// <summary>(c) The owner frees o and allocates again (possibly getting o back) while a remote frees o.</summary>
    internal static ProtocolScenario ReallocationRace { get; } =
        new("c: owner free(o), alloc, collect, alloc || remote free(o)", 1, [Free(0), Alloc, Collect, Alloc], [Free(0)]);

    /// <summary>(d) A single free by the owner.</summary>
    internal static ProtocolScenario SingleOwnerFree { get; } = new("d1: owner free(o)", 1, [Free(0)]);

    /// <summary>(d) A single free by a remote; the owner collects meanwhile and at the end.</summary>
    internal static ProtocolScenario SingleRemoteFree { get; } = new("d2: owner collect || remote free(o)", 1, [Collect], [Free(0)]);

    /// <summary>(e) Two objects, so the order of LOCAL matters.</summary>
    internal static ProtocolScenario TwoObjects { get; } =
        new("e: owner free(o0), free(o1), alloc, alloc || remote free(o0)", 2, [Free(0), Free(1), Alloc, Alloc], [Free(0)]);

    /// <summary>(f) Three threads: the owner frees and allocates while two remotes free the same object.</summary>
    internal static ProtocolScenario OwnerAndTwoRemotes { get; } =
        new("f: owner free(o), alloc || remote1 free(o) || remote2 free(o)", 1, [Free(0), Alloc], [Free(0)], [Free(0)]);

    /// <summary>The scenarios a-e of the specification.</summary>
    internal static ProtocolScenario[] Specified => [OwnerAndRemote, TwoRemotes, ReallocationRace, SingleOwnerFree, SingleRemoteFree, TwoObjects];

    /// <summary>The specified scenarios plus the three-thread one.</summary>
    internal static ProtocolScenario[] Every => [.. Specified, OwnerAndTwoRemotes];

    // ---- the protocol as specified: P1, P2, P3 and P5 in every TSO schedule ------------------------------------------

    [Fact]
    public void OwnerFreeRacingRemoteFree_EveryTsoSchedule_IsSafe() => AssertHolds(OwnerAndRemote);

    [Fact]
    public void TwoRemoteFrees_EveryTsoSchedule_IsSafe() => AssertHolds(TwoRemotes);

    [Fact]
    public void FreeThenReallocateRacingRemoteFree_EveryTsoSchedule_IsSafe() => AssertHolds(ReallocationRace);

    [Fact]
    public void SingleOwnerFree_EveryTsoSchedule_IsSafeWithoutReports() => AssertHolds(SingleOwnerFree);

    [Fact]
    public void SingleRemoteFree_EveryTsoSchedule_IsSafeWithoutReports() => AssertHolds(SingleRemoteFree);

    [Fact]
    public void TwoObjectsRacingRemoteFree_EveryTsoSchedule_IsSafe() => AssertHolds(TwoObjects);

    // ---- broken variants: the checker must find a violation -----------------------------------------------------------

    [Fact]
    public void PopWithoutMarkCheck_UnreportedDoubleFree_IsCaught()
        => AssertCaught(new TsoProtocolFlags(PopChecksMark: false), ProtocolProperties.DoubleFreesReported, "without a report");

    [Fact]
    public void CollectWithoutStateCheck_ObjectOnLocalTwice_IsCaught()
        => AssertCaught(new TsoProtocolFlags(CollectChecksState: false), ProtocolProperties.Safety, "P1: LOCAL holds o0 twice");

    /// <summary>
    /// A remote free without the re-read of S pushes every claimed object. This stays safe (P1-P3 hold in every
    /// scenario), because the collect checks S and the pop checks M. What the variant loses is naming the caller (P5):
    /// a double free that the re-read would report at the call is only reported late.
    /// </summary>
    [Fact]
    public void RemoteFreeWithoutReread_DoubleFreeNotNamedAtCall_IsCaught()
    {
        var variant = new TsoProtocolFlags(RemoteRereadsState: false);
        foreach (ProtocolScenario scenario in Every)
        {
            ProtocolExploration safety = Explore(scenario, variant, ProtocolProperties.Safety);
            Assert.True(safety.Violation is null, safety.Violation);
        }

        AssertCaught(variant, ProtocolProperties.NamedAtCall, "was not named at the call");
    }

    // ---- findings on the protocol as specified -------------------------------------------------------------------------

    /// <summary>
    /// P4 does not hold. The pop loads M = 1 (a remote's claim), acknowledges with CAS(M, 1 -> 2) and reports late
    /// (pop). The remote's re-read then sees S != LIVE, its CAS(M, 1 -> 0) fails on M = 2, and it pushes and reports at
    /// the call. One double free, two reports.
    /// </summary>
    [Fact]
    public void OneReportPerDoubleFree_PopAcknowledgesRemoteClaim_ReportsTwice()
    {
        ProtocolExploration result = Explore(ReallocationRace, TsoProtocolFlags.Correct, ProtocolProperties.OneReportPerDoubleFree);
        Assert.NotNull(result.Violation);
        output.WriteLine(result.Violation);
        Assert.Contains("reported 2 times", result.Violation, StringComparison.Ordinal);
        Assert.Contains("reported late (pop)", result.Violation, StringComparison.Ordinal);
        Assert.Contains("double free at call (owner acknowledged)", result.Violation, StringComparison.Ordinal);
    }

    /// <summary>
    /// Dropping the remote's report on M = 2 (the pop has already reported) gives one report per double free in
    /// scenarios a-e. The remote caller is then not named at the call, so P5 fails: in that race P4 and P5 conflict.
    /// </summary>
    [Fact]
    public void OneReportPerDoubleFree_WithoutAcknowledgedReport_HoldsButCallerIsNotNamed()
    {
        var variant = new TsoProtocolFlags(RemoteReportsAcknowledged: false);
        foreach (ProtocolScenario scenario in Specified)
        {
            ProtocolExploration result = Explore(scenario, variant, ProtocolProperties.Safety | ProtocolProperties.OneReportPerDoubleFree);
            Assert.True(result.Violation is null, result.Violation);
        }

        AssertCaught(variant, ProtocolProperties.NamedAtCall, "was not named at the call");
    }

    /// <summary>
    /// P3 fails with three threads. Remote1 claims o (M 0 -> 1). The pop acknowledges (M 1 -> 2) and quarantines o.
    /// Remote2's XCHG(M, 1) returns 2 and reports, but it writes 1. Remote1 re-reads S = QUAR, and its CAS(M, 1 -> 0)
    /// now succeeds: it reports and returns without pushing. The quarantined object never comes back.
    /// </summary>
    [Fact]
    public void OwnerAndTwoRemotes_XchgOverwritesAcknowledgement_LosesQuarantinedObject()
    {
        ProtocolExploration result = Explore(OwnerAndTwoRemotes, TsoProtocolFlags.Correct, ProtocolProperties.Safety);
        Assert.NotNull(result.Violation);
        output.WriteLine(result.Violation);
        Assert.Contains("P3: o0 is lost", result.Violation, StringComparison.Ordinal);
        Assert.Contains("XCHG(M[o0], 1) returns 2", result.Violation, StringComparison.Ordinal);
    }

    /// <summary>With the claim done by CAS(M, 0 -> 1), which leaves M = 2 in place, P1-P3 and P5 hold in every scenario.</summary>
    [Fact]
    public void RemoteClaimByCas_EveryScenarioAndTsoSchedule_IsSafe()
    {
        var variant = new TsoProtocolFlags(RemoteClaimsByCas: true);
        foreach (ProtocolScenario scenario in Every)
        {
            ProtocolExploration result = Explore(scenario, variant, ProtocolProperties.Proven);
            Assert.True(result.Violation is null, result.Violation);
        }
    }

    // ---- helpers -------------------------------------------------------------------------------------------------------

    private ProtocolExploration Explore(ProtocolScenario scenario, TsoProtocolFlags flags, ProtocolProperties properties)
    {
        ProtocolExploration result = TsoProtocolModel.Explore(scenario, flags, properties);
        output.WriteLine(string.Create(
            CultureInfo.InvariantCulture,
            $"[{scenario}] {flags}, checking {properties}: {result.Schedules} schedules explored over {result.States} distinct states{(result.Violation is null ? "" : ", violation found (the search stops there)")}"));
        return result;
    }

    /// <summary>The protocol as specified satisfies P1, P2, P3 and P5; a violation's schedule is the failure message.</summary>
    private void AssertHolds(ProtocolScenario scenario)
    {
        ProtocolExploration result = Explore(scenario, TsoProtocolFlags.Correct, ProtocolProperties.Proven);
        Assert.True(result.Violation is null, result.Violation);

        // A search that explored no interleaving would prove nothing.
        Assert.True(result.Schedules > 1, "no interleavings were explored");
    }

    /// <summary>The variant violates the properties in some scenario; the first such scenario's schedule is printed.</summary>
    private void AssertCaught(TsoProtocolFlags variant, ProtocolProperties properties, string expected)
    {
        foreach (ProtocolScenario scenario in Every)
        {
            ProtocolExploration result = Explore(scenario, variant, properties);
            if (result.Violation is not null)
            {
                output.WriteLine(result.Violation);
                Assert.Contains(expected, result.Violation, StringComparison.Ordinal);
                return;
            }
        }

        Assert.Fail($"{variant}: no scenario shows a violation of {properties}");
    }
}
