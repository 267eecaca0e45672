using System.Globalization;
using Xunit.Abstractions;

namespace BuddySystem.Tests.Reliability;

/// <summary>
/// Exhaustive interleaving proofs of the free protocol for slab objects under x86-TSO. An object may be freed by its
/// slab's owner thread or by a remote thread, and double frees are detected. These tests check a model of the protocol
/// (<see cref="TsoProtocolModel"/>), not the heap's code. The model's default (<see cref="TsoProtocolFlags.Implemented"/>)
/// is the protocol of src/BuddySystem/Internals/SlabTier.RemoteFree.cs; docs/concurrency.md states it.
/// <para>
/// The protocol. S is an object's state (LIVE, FREE, QUAR; written by the owner only, with plain stores), M its remote
/// mark (0 clear, 1 claimed by a remote free, 2 the owner acknowledged the claim, 3 the claimer reported).
/// Owner free: load S, load M; LIVE and 0 -> store S = FREE, push LOCAL, Used--; else report at the call.
/// Remote free: load S, not LIVE -> report at the call. CAS(M, 0 -> 1); failure (M was 1, 2 or 3) -> report at the
/// call, M unchanged. Re-read S: LIVE -> push THREADFREE. Not LIVE -> CAS(M, 1 -> 0): success -> report at the call;
/// failure (M = 2: the owner's pop acknowledged) -> store M = 3, push THREADFREE, report at the call.
/// Owner pop: load M of the popped object; 0 -> hand it out (store S = LIVE, Used++). Else CAS(M, 1 -> 2): success ->
/// store S = QUAR, no report, not handed out, try the next object; failure (the claimer backed out) -> hand it out.
/// Owner collect: take THREADFREE whole; per object load S: LIVE -> S = FREE, M = 0, push LOCAL, Used--; QUAR -> load
/// M, report late (collect) unless M = 3 (M = 2: the claimer read a stale LIVE and pushed without a report), then
/// S = FREE, M = 0, push LOCAL, not counted; anything else (FREE) -> report late, M = 0, not pushed.
/// </para>
/// <para>
/// The model. Each simulated thread runs a short program of calls (free, alloc, collect). A call is split into steps, one
/// per memory instruction. Owner-private work (LOCAL, Used) is folded into a neighbouring step, since no other thread sees it. Memory
/// is x86-TSO: every thread has a FIFO store buffer. A plain store, which is also x86's release store, goes into the
/// buffer. A plain load reads the newest buffered store to its location in the own buffer, else memory. Moving the
/// oldest entry of any thread's buffer to memory is a step of its own, and the scheduler may take it at any point. A
/// locked instruction (CAS, XCHG, the THREADFREE push and take-all) first drains its thread's buffer, then runs
/// atomically on memory. A depth-first search takes every enabled step, thread steps and flushes alike, in every state. A
/// state is the program counters, locals, store buffers, memory, LOCAL, THREADFREE, Used and the ghost state; states are
/// memoised, so each one is explored once. Each test prints how many complete schedules (distinct step sequences) it
/// covered, counted over the state graph, and which kinds of report the search reached. After every thread has finished,
/// the owner runs a final collect; once every buffer is flushed, the properties are checked. A violation is shown as a
/// shortest schedule that leads to it.
/// </para>
/// <para>
/// The properties, for each scenario and exactly these programs:
/// (P1) No object is handed out twice, and LOCAL never holds an object twice or an object that is handed out.
/// (P2) Each free call belongs to the object's generation at its linearisation point: the owner's load of M, the remote's
/// claim of M, or the remote's pre-check load when that load reports. The generation changes at the allocation's load of M
/// (or at its failed CAS(M, 1 -> 2), the access that finds M back at 0).
/// Each generation has at most one unreported free. A program that frees an object once gets no report.
/// (P3) Used equals the number of objects handed out. At quiescence every object is on LOCAL or handed out, never both;
/// THREADFREE is empty; and S and M are clean.
/// (P4) Each double free is reported exactly once: no free call is reported twice, and an object freed n times gets at
/// most n - 1 reports (P2 gives at least the reports needed).
/// (P5) A remote free is named at the call when its claim of M succeeds on a free object whose release (S != LIVE) has
/// already reached memory.
/// </para>
/// <para>
/// Results. The protocol as implemented satisfies P1-P5 in every TSO schedule of every scenario, a to f; the searches
/// reach each report path (at the call: pre-check, failed claim, backed out, owner acknowledged; late: collect of a FREE
/// object, collect of a quarantined object with M = 2) and the collect's silent release of a quarantined object with M = 3.
/// The checker catches every broken variant: a pop without the M check and a collect without the S check (P1-P3); a
/// remote free without the re-read, which stays safe (the collect and the pop still handle every pushed object) but
/// breaks P5; the claim by XCHG(M, 1) of the protocol as first written, which in scenario f overwrites the owner's
/// M = 2 so that the first claimer's CAS(M, 1 -> 0) succeeds and the quarantined object is lost (P3); a claimer that
/// reports without storing M = 3, so the collect reports again (P4); and the reporting as first written, where both the
/// pop and the claimer report the acknowledged claim (P4).
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

    // ---- the protocol as implemented: P1-P5 in every TSO schedule ------------------------------------------------------

    [Fact]
    public void OwnerFreeRacingRemoteFree_EveryTsoSchedule_SatisfiesP1ToP5() => AssertHolds(OwnerAndRemote);

    [Fact]
    public void TwoRemoteFrees_EveryTsoSchedule_SatisfiesP1ToP5() => AssertHolds(TwoRemotes);

    /// <summary>
    /// The race that showed two reports under the protocol as first written: the pop acknowledges a remote's claim. Now
    /// exactly one of the claimer (at its call, marking M = 3) and the collect (late, on M = 2) reports it; the search
    /// reaches both, and the collect's silent release on M = 3.
    /// </summary>
    [Fact]
    public void FreeThenReallocateRacingRemoteFree_EveryTsoSchedule_SatisfiesP1ToP5()
    {
        ProtocolExploration result = AssertHolds(ReallocationRace);
        Assert.Contains("double free at call (owner acknowledged)", result.Events);
        Assert.Contains("reported late (collect, quarantined)", result.Events);
        Assert.Contains("collect releases a quarantined object its claimer reported (M = 3)", result.Events);
        Assert.DoesNotContain("reported late (pop)", result.Events);
    }

    [Fact]
    public void SingleOwnerFree_EveryTsoSchedule_SatisfiesP1ToP5WithoutReports() => AssertHolds(SingleOwnerFree);

    [Fact]
    public void SingleRemoteFree_EveryTsoSchedule_SatisfiesP1ToP5WithoutReports() => AssertHolds(SingleRemoteFree);

    [Fact]
    public void TwoObjectsRacingRemoteFree_EveryTsoSchedule_SatisfiesP1ToP5() => AssertHolds(TwoObjects);

    /// <summary>
    /// The three-thread race that lost the quarantined object when the claim was an XCHG: a second remote's failed
    /// CAS(M, 0 -> 1) leaves the owner's acknowledgement (M = 2) in place.
    /// </summary>
    [Fact]
    public void OwnerAndTwoRemoteFrees_EveryTsoSchedule_SatisfiesP1ToP5()
    {
        ProtocolExploration result = AssertHolds(OwnerAndTwoRemotes);
        Assert.Contains("double free at call (claim failed)", result.Events);
        Assert.Contains("double free at call (owner acknowledged)", result.Events);
    }

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

    /// <summary>
    /// The claim as first written, XCHG(M, 1), loses an object with three threads. Remote1 claims o (M 0 -> 1). The pop
    /// acknowledges (M 1 -> 2) and quarantines o. Remote2's XCHG(M, 1) returns 2 and reports, but it writes 1. Remote1
    /// re-reads S = QUAR, and its CAS(M, 1 -> 0) now succeeds: it reports and returns without pushing. The quarantined
    /// object never comes back.
    /// </summary>
    [Fact]
    public void ClaimByXchg_OverwritesAcknowledgement_LostQuarantinedObjectIsCaught()
    {
        ProtocolExploration result = Explore(OwnerAndTwoRemotes, new TsoProtocolFlags(RemoteClaimsByCas: false), ProtocolProperties.Safety);
        Assert.NotNull(result.Violation);
        output.WriteLine(result.Violation);
        Assert.Contains("P3: o0 is lost", result.Violation, StringComparison.Ordinal);
        Assert.Contains("XCHG(M[o0], 1) returns 2", result.Violation, StringComparison.Ordinal);
    }

    /// <summary>
    /// A claimer that finds its claim acknowledged reports at its call but leaves M = 2: the collect then reports the
    /// quarantined object again. One double free, two reports (P4).
    /// </summary>
    [Fact]
    public void ClaimerWithoutReportedMark_CollectReportsAgain_IsCaught()
    {
        ProtocolExploration result = Explore(ReallocationRace, new TsoProtocolFlags(ClaimerMarksReported: false), ProtocolProperties.All);
        Assert.NotNull(result.Violation);
        output.WriteLine(result.Violation);
        Assert.Contains("reported 2 times", result.Violation, StringComparison.Ordinal);
        Assert.Contains("double free at call (owner acknowledged)", result.Violation, StringComparison.Ordinal);
        Assert.Contains("reported late (collect, quarantined)", result.Violation, StringComparison.Ordinal);
    }

    /// <summary>
    /// The reporting as first written breaks P4. The pop loads M = 1 (a remote's claim), acknowledges with
    /// CAS(M, 1 -> 2) and reports late (pop). The remote's re-read then sees S != LIVE, its CAS(M, 1 -> 0) fails on
    /// M = 2, and it pushes and reports at the call. One double free, two reports.
    /// </summary>
    [Fact]
    public void FirstWrittenReporting_PopAndClaimerBothReport_IsCaught()
    {
        ProtocolExploration result = Explore(ReallocationRace, TsoProtocolFlags.FirstWrittenReporting, ProtocolProperties.OneReportPerDoubleFree);
        Assert.NotNull(result.Violation);
        output.WriteLine(result.Violation);
        Assert.Contains("reported 2 times", result.Violation, StringComparison.Ordinal);
        Assert.Contains("reported late (pop)", result.Violation, StringComparison.Ordinal);
        Assert.Contains("double free at call (owner acknowledged)", result.Violation, StringComparison.Ordinal);
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

    /// <summary>The protocol as implemented satisfies P1-P5; a violation's schedule is the failure message.</summary>
    private ProtocolExploration AssertHolds(ProtocolScenario scenario)
    {
        ProtocolExploration result = Explore(scenario, TsoProtocolFlags.Implemented, ProtocolProperties.All);
        output.WriteLine("Reached: " + (result.Events.Count == 0 ? "no report" : string.Join("; ", result.Events)));
        Assert.True(result.Violation is null, result.Violation);

        // A search that explored no interleaving would prove nothing.
        Assert.True(result.Schedules > 1, "no interleavings were explored");
        return result;
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
