using System.Globalization;
using System.Numerics;
using System.Text;

namespace BuddySystem.Tests.Reliability;

/// <summary>
/// Switches that turn the slab free protocol of <see cref="TsoProtocolModel"/> into the broken variants the checker must
/// catch. The default is the protocol the heap implements (src/BuddySystem/Internals/SlabTier.RemoteFree.cs).
/// </summary>
/// <param name="PopChecksMark">The pop loads M and quarantines an object a remote free has claimed.</param>
/// <param name="RemoteRereadsState">The remote free loads S again after its claim and backs out when the object is no longer LIVE.</param>
/// <param name="CollectChecksState">The collect loads S of each collected object (otherwise it treats every one as LIVE).</param>
/// <param name="RemoteClaimsByCas">
/// The remote free claims M with CAS(M, 0 -> 1), which fails and leaves M alone when M is 1, 2 or 3. Off is the protocol
/// as first written: XCHG(M, 1), which overwrites an owner's acknowledgement (M = 2).
/// </param>
/// <param name="PopReportsClaim">
/// The pop that acknowledges a claim (CAS(M, 1 -> 2)) reports the double free late, as the protocol as first written
/// did. Off (as implemented): the pop quarantines silently and the claimer or the collect reports.
/// </param>
/// <param name="ClaimerMarksReported">
/// The remote whose CAS(M, 1 -> 0) fails on the owner's acknowledgement (M = 2) stores M = 3 before its push (it reports
/// at the call either way). Off is the protocol as first written.
/// </param>
/// <param name="CollectReportsQuarantined">
/// The collect loads M of a quarantined object and reports it late unless M = 3 (the claimer reported). Off is the
/// protocol as first written: the collect reports no quarantined object.
/// </param>
internal sealed record TsoProtocolFlags(
    bool PopChecksMark = true,
    bool RemoteRereadsState = true,
    bool CollectChecksState = true,
    bool RemoteClaimsByCas = true,
    bool PopReportsClaim = false,
    bool ClaimerMarksReported = true,
    bool CollectReportsQuarantined = true)
{
    /// <summary>The protocol the heap implements.</summary>
    public static TsoProtocolFlags Implemented { get; } = new();

    /// <summary>The reporting of the protocol as first written (the claim by CAS kept): the pop and the claimer both report.</summary>
    public static TsoProtocolFlags FirstWrittenReporting { get; } = new(PopReportsClaim: true, ClaimerMarksReported: false, CollectReportsQuarantined: false);
}

/// <summary>One call of a simulated thread's program.</summary>
internal enum ProtocolCall : byte
{
    Free,
    Alloc,
    Collect,
}

/// <summary>One call of a simulated thread: its kind and, for a free, the object it frees.</summary>
internal readonly record struct ProtocolStep(ProtocolCall Call, int Obj = 0)
{
    public static ProtocolStep Free(int obj) => new(ProtocolCall.Free, obj);

    public static ProtocolStep Alloc { get; } = new(ProtocolCall.Alloc);

    public static ProtocolStep Collect { get; } = new(ProtocolCall.Collect);

    public override string ToString() => Call switch
    {
        ProtocolCall.Free => string.Create(CultureInfo.InvariantCulture, $"free(o{Obj})"),
        ProtocolCall.Alloc => "alloc",
        _ => "collect",
    };
}

/// <summary>
/// A scenario: thread 0 is the slab's owner, the others are remote threads (which only free). Every object starts
/// allocated once (LIVE, M = 0, generation 1, counted in Used). After every thread has finished the owner runs one more
/// collect (the model's quiescence), then the properties are checked.
/// </summary>
internal sealed class ProtocolScenario(string name, int objects, params ProtocolStep[][] programs)
{
    public string Name { get; } = name;

    public int Objects { get; } = objects;

    /// <summary>programs[0] is the owner's, the rest remote threads'; a remote program holds frees only.</summary>
    public IReadOnlyList<ProtocolStep[]> Programs { get; } = programs;

    public override string ToString() => Name;
}

/// <summary>Which properties the checker tests at every complete schedule.</summary>
[Flags]
internal enum ProtocolProperties
{
    None = 0,

    /// <summary>P1: no object is handed out twice, LOCAL never holds an object twice or one that is handed out.</summary>
    NoDoubleHandOut = 1,

    /// <summary>P2: per generation at most one unreported free; no report when the program frees each object at most once.</summary>
    DoubleFreesReported = 2,

    /// <summary>P3: Used equals the objects handed out; no object lost; THREADFREE empty and metadata clean at quiescence.</summary>
    CountsConsistent = 4,

    /// <summary>P4: no free call is reported twice and an object gets at most (its free calls - 1) reports.</summary>
    OneReportPerDoubleFree = 8,

    /// <summary>
    /// P5: a remote free whose claim of M succeeds on an object that is free (not handed out) and whose release (S != LIVE) has
    /// already reached memory is named at the call (not only reported late).
    /// </summary>
    NamedAtCall = 16,

    Safety = NoDoubleHandOut | DoubleFreesReported | CountsConsistent,

    All = Safety | OneReportPerDoubleFree | NamedAtCall,
}

/// <summary>The outcome of an exhaustive exploration.</summary>
/// <param name="Schedules">Complete schedules (distinct step sequences, flushes included) covered.</param>
/// <param name="States">Distinct states visited (the memo's size).</param>
/// <param name="Violation">The first property violation found, with its schedule; null when none.</param>
/// <param name="Events">The kinds of report (and the collect's silent release of an object its claimer reported) that
/// some explored step made: evidence that the search reached the protocol's rare paths.</param>
internal sealed record ProtocolExploration(BigInteger Schedules, int States, string? Violation, IReadOnlySet<string> Events);

/// <summary>
/// The slab free protocol as a transition system under x86-TSO, and an exhaustive depth-first explorer for it. See
/// <see cref="ProtocolInterleavingTests"/> for the protocol, the memory model and the properties.
/// </summary>
internal sealed class TsoProtocolModel
{
    private const byte Live = 1;
    private const byte Free = 2;
    private const byte Quar = 3;

    // Values of M: 0 clear, 1 claimed by a remote free, 2 acknowledged by the owner's pop, 3 the claimer reported.
    private const byte Acknowledged = 2;
    private const byte ReportedByClaimer = 3;

    private readonly ProtocolScenario scenario;
    private readonly TsoProtocolFlags flags;
    private readonly ProtocolProperties properties;

    // The free calls of the scenario, numbered: call id -> (thread, object); per object the number of free calls.
    private readonly List<(int Thread, int Obj)> calls = [];
    private readonly int[][] callIds;
    private readonly int[] freesPerObject;

    private readonly Dictionary<byte[], BigInteger> memo = new(ByteArrayComparer.Instance);
    private readonly List<Choice> path = [];
    private readonly SortedSet<string> events = new(StringComparer.Ordinal);
    private string? violation;

    private TsoProtocolModel(ProtocolScenario scenario, TsoProtocolFlags flags, ProtocolProperties properties)
    {
        this.scenario = scenario;
        this.flags = flags;
        this.properties = properties;
        freesPerObject = new int[scenario.Objects];
        callIds = new int[scenario.Programs.Count][];
        for (int t = 0; t < scenario.Programs.Count; t++)
        {
            ProtocolStep[] program = scenario.Programs[t];
            callIds[t] = new int[program.Length];
            for (int i = 0; i < program.Length; i++)
            {
                callIds[t][i] = -1;
                if (program[i].Call == ProtocolCall.Free)
                {
                    if (program[i].Obj < 0 || program[i].Obj >= scenario.Objects)
                    {
                        throw new ArgumentException("A free names an object outside the scenario.", nameof(scenario));
                    }

                    callIds[t][i] = calls.Count;
                    calls.Add((t, program[i].Obj));
                    freesPerObject[program[i].Obj]++;
                }
                else if (t != 0)
                {
                    throw new ArgumentException("A remote thread only frees.", nameof(scenario));
                }
            }
        }
    }

    /// <summary>Explores every schedule of the scenario; stops at the first violation of a checked property.</summary>
    public static ProtocolExploration Explore(ProtocolScenario scenario, TsoProtocolFlags flags, ProtocolProperties properties)
    {
        var model = new TsoProtocolModel(scenario, flags, properties);
        BigInteger schedules = model.Search(model.Initial());
        return new ProtocolExploration(schedules, model.memo.Count, model.violation, model.events);
    }

    private readonly record struct Choice(int Thread, bool Flush);

    private State Initial()
    {
        int objects = scenario.Objects;
        var state = new State
        {
            S = new byte[objects],
            M = new byte[objects],
            Claim = new sbyte[objects],
            Gen = new byte[objects],
            HandedOut = new bool[objects],
            Used = objects,
            LpGen = new byte[calls.Count],
            Reports = new byte[calls.Count],
            NamedAtCall = new byte[calls.Count],
            MustNameAtCall = new byte[calls.Count],
            Threads = new ThreadState[scenario.Programs.Count],
        };
        for (int o = 0; o < objects; o++)
        {
            state.S[o] = Live;
            state.Claim[o] = -1;
            state.Gen[o] = 1;
            state.HandedOut[o] = true;
        }

        for (int t = 0; t < state.Threads.Length; t++)
        {
            state.Threads[t] = new ThreadState();
        }

        return state;
    }

    // ---- exploration -------------------------------------------------------------------------------------------------

    private BigInteger Search(State state)
    {
        byte[] key = state.Encode();
        if (memo.TryGetValue(key, out BigInteger known))
        {
            return known.Sign >= 0 ? known : throw new InvalidOperationException("The transition system has a cycle.");
        }

        if (state.Error is not null)
        {
            Fail(state.Error);
            return BigInteger.Zero;
        }

        memo[key] = BigInteger.MinusOne;
        BigInteger total = BigInteger.Zero;
        List<Choice> choices = Choices(state);
        foreach (Choice choice in choices)
        {
            total += Follow(state, choice);
            if (violation is not null)
            {
                break;
            }
        }

        if (choices.Count == 0)
        {
            total = BigInteger.One;
            string? broken = CheckEnd(state);
            if (broken is not null)
            {
                Fail(broken);
            }
        }

        memo[key] = total;
        return total;
    }

    private BigInteger Follow(State state, Choice choice)
    {
        State next = state.Clone();
        Apply(next, choice, log: null);
        path.Add(choice);
        BigInteger count = Search(next);
        path.RemoveAt(path.Count - 1);
        return count;
    }

    private void Fail(string what)
    {
        if (violation is not null)
        {
            return;
        }

        // The depth-first path is correct but often long; a breadth-first search over the same states finds a shortest
        // schedule to a violating state, which is the one shown.
        (List<Choice> shortest, string shortestWhat) = ShortestViolation() ?? (path, what);

        // Replay the schedule with a log, so the message shows every step that led here.
        var log = new List<string>();
        State replay = Initial();
        foreach (Choice choice in shortest)
        {
            Apply(replay, choice, log);
        }

        what = shortestWhat;

        var text = new StringBuilder();
        text.Append(CultureInfo.InvariantCulture, $"{scenario.Name} {flags}: {what}").AppendLine();
        text.AppendLine("Schedule:");
        for (int i = 0; i < log.Count; i++)
        {
            text.Append(CultureInfo.InvariantCulture, $"  {i + 1,3}. {log[i]}").AppendLine();
        }

        if (replay.Error is null)
        {
            text.AppendLine("  (end: every thread finished, the final collect ran, every store buffer is flushed)");
        }

        violation = text.ToString();
    }

    private (List<Choice> Path, string What)? ShortestViolation()
    {
        var seen = new HashSet<byte[]>(ByteArrayComparer.Instance);
        var queue = new Queue<(State State, List<Choice> Path)>();
        State start = Initial();
        seen.Add(start.Encode());
        queue.Enqueue((start, []));
        while (queue.Count > 0)
        {
            (State state, List<Choice> at) = queue.Dequeue();
            if (state.Error is not null)
            {
                return (at, state.Error);
            }

            List<Choice> choices = Choices(state);
            if (choices.Count == 0 && CheckEnd(state) is { } broken)
            {
                return (at, broken);
            }

            foreach (Choice choice in choices)
            {
                State next = state.Clone();
                Apply(next, choice, log: null);
                if (seen.Add(next.Encode()))
                {
                    queue.Enqueue((next, [.. at, choice]));
                }
            }
        }

        return null;
    }

    private List<Choice> Choices(State state)
    {
        var choices = new List<Choice>();
        for (int t = 0; t < state.Threads.Length; t++)
        {
            if (state.Threads[t].Buffer.Count > 0)
            {
                choices.Add(new Choice(t, Flush: true));
            }

            if (Enabled(state, t))
            {
                choices.Add(new Choice(t, Flush: false));
            }
        }

        return choices;
    }

    /// <summary>The owner's last call is the final collect, which waits until every remote thread has finished.</summary>
    private bool Done(State state, int t) => state.Threads[t].Op >= scenario.Programs[t].Length + (t == 0 ? 1 : 0);

    private bool Enabled(State state, int t)
    {
        if (Done(state, t))
        {
            return false;
        }

        if (t == 0 && state.Threads[0].Op == scenario.Programs[0].Length)
        {
            for (int r = 1; r < state.Threads.Length; r++)
            {
                if (!Done(state, r))
                {
                    return false;
                }
            }
        }

        return true;
    }

    private ProtocolStep CurrentStep(State state, int t)
        => state.Threads[t].Op < scenario.Programs[t].Length ? scenario.Programs[t][state.Threads[t].Op] : ProtocolStep.Collect;

    private string ThreadName(int t) => t == 0 ? "owner" : scenario.Programs.Count == 2 ? "remote" : string.Create(CultureInfo.InvariantCulture, $"remote{t}");

    private string CallName(int call)
        => string.Create(CultureInfo.InvariantCulture, $"{ThreadName(calls[call].Thread)}'s free(o{calls[call].Obj}) #{call}");

    // ---- one step ----------------------------------------------------------------------------------------------------

    private void Apply(State state, Choice choice, List<string>? log)
    {
        if (choice.Flush)
        {
            List<(byte Loc, byte Value)> buffer = state.Threads[choice.Thread].Buffer;
            (byte loc, byte value) = buffer[0];
            buffer.RemoveAt(0);
            Write(state, loc, value);
            log?.Add(string.Create(CultureInfo.InvariantCulture, $"flush {ThreadName(choice.Thread)}: {LocName(loc)} = {ValueName(loc, value)} reaches memory"));
            return;
        }

        int t = choice.Thread;
        ProtocolStep step = CurrentStep(state, t);
        string prefix = string.Create(CultureInfo.InvariantCulture, $"{ThreadName(t)} {(state.Threads[t].Op == scenario.Programs[t].Length ? "final collect" : step.ToString())}: ");
        var line = log is null ? null : new StringBuilder(prefix);
        switch (step.Call)
        {
            case ProtocolCall.Free when t == 0:
                OwnerFree(state, step.Obj, callIds[0][state.Threads[0].Op], line);
                break;
            case ProtocolCall.Free:
                RemoteFree(state, t, step.Obj, callIds[t][state.Threads[t].Op], line);
                break;
            case ProtocolCall.Alloc:
                Alloc(state, line);
                break;
            default:
                Collect(state, line, nested: false);
                break;
        }

        if (line is not null)
        {
            log!.Add(line.ToString());
        }
    }

    private static void EndCall(ThreadState thread)
    {
        thread.Op++;
        thread.Pc = 0;
        thread.Obj = 0;
        thread.Loaded = 0;
        thread.ReportAfterPush = false;
        thread.Collected = false;
        thread.CollectList.Clear();
        thread.CollectIndex = 0;
    }

    // Owner free(o): load S; load M (the linearisation point); report, or store S = FREE and push on LOCAL.
    private void OwnerFree(State state, int o, int call, StringBuilder? line)
    {
        ThreadState me = state.Threads[0];
        switch (me.Pc)
        {
            case 0:
                me.Loaded = Load(state, 0, SLoc(o), line);
                me.Pc = 1;
                break;
            case 1:
                byte m = Load(state, 0, MLoc(o), line);
                Linearise(state, call, o, line);
                if (me.Loaded != Live || m != 0)
                {
                    Report(state, call, "double free at call (owner)", atCall: true, line);
                    EndCall(me);
                }
                else
                {
                    state.HandedOut[o] = false;
                    me.Pc = 2;
                }

                break;
            default:
                Store(state, 0, SLoc(o), Free, line);
                PushLocal(state, o, line);
                state.Used--;
                EndCall(me);
                break;
        }
    }

    // Remote free(o): pre-check S; claim M with CAS(M, 0 -> 1) (or XCHG(M, 1)), the linearisation point; re-read S;
    // push, or back out with CAS(M, 1 -> 0); when that fails on the owner's acknowledgement, store M = 3, push and report.
    private const int RemotePreCheck = 0;
    private const int RemoteClaim = 1;
    private const int RemoteReread = 2;
    private const int RemotePush = 3;
    private const int RemoteBackOut = 4;
    private const int RemoteMarkReported = 5;

    private void RemoteFree(State state, int t, int o, int call, StringBuilder? line)
    {
        ThreadState me = state.Threads[t];
        switch (me.Pc)
        {
            case RemotePreCheck:
                if (Load(state, t, SLoc(o), line) != Live)
                {
                    Linearise(state, call, o, line);
                    Report(state, call, "double free at call (pre-check)", atCall: true, line);
                    EndCall(me);
                }
                else
                {
                    me.Pc = RemoteClaim;
                }

                break;
            case RemoteClaim:
                Drain(state, t, line);
                byte old = state.M[o];
                if (old == 0 || !flags.RemoteClaimsByCas)
                {
                    state.M[o] = 1;
                }

                if (old == 0)
                {
                    state.Claim[o] = (sbyte)call;
                }

                if (flags.RemoteClaimsByCas)
                {
                    line?.Append(CultureInfo.InvariantCulture, $"CAS(M[o{o}], 0 -> 1) {(old == 0 ? "succeeds" : "fails")} (M was {old}); ");
                }
                else
                {
                    line?.Append(CultureInfo.InvariantCulture, $"XCHG(M[o{o}], 1) returns {old}; ");
                }

                Linearise(state, call, o, line);
                if (old == 0 && state.S[o] != Live && !state.HandedOut[o])
                {
                    // Ghost: the claim comes when the object is free and its release has reached memory: the call can know.
                    state.MustNameAtCall[call] = 1;
                }

                if (old != 0)
                {
                    Report(state, call, "double free at call (claim failed)", atCall: true, line);
                    EndCall(me);
                }
                else
                {
                    me.Pc = flags.RemoteRereadsState ? RemoteReread : RemotePush;
                }

                break;
            case RemoteReread:
                me.Pc = Load(state, t, SLoc(o), line) == Live ? RemotePush : RemoteBackOut;
                break;
            case RemotePush:
                Drain(state, t, line);
                state.ThreadFree.Add(((byte)o, (byte)call));
                line?.Append(CultureInfo.InvariantCulture, $"THREADFREE.push(o{o}); ");
                if (me.ReportAfterPush)
                {
                    Report(state, call, "double free at call (owner acknowledged)", atCall: true, line);
                }

                EndCall(me);
                break;
            case RemoteBackOut:
                Drain(state, t, line);
                if (state.M[o] == 1)
                {
                    state.M[o] = 0;
                    state.Claim[o] = -1;
                    line?.Append(CultureInfo.InvariantCulture, $"CAS(M[o{o}], 1 -> 0) succeeds; ");
                    Report(state, call, "double free at call (backed out)", atCall: true, line);
                    EndCall(me);
                }
                else
                {
                    line?.Append(CultureInfo.InvariantCulture, $"CAS(M[o{o}], 1 -> 0) fails (M = {state.M[o]}); ");
                    me.ReportAfterPush = true;
                    me.Pc = flags.ClaimerMarksReported ? RemoteMarkReported : RemotePush;
                }

                break;
            default:
                // The owner leaves an acknowledged mark alone until it collects the object, which the push publishes.
                Store(state, t, MLoc(o), ReportedByClaimer, line);
                me.Pc = RemotePush;
                break;
        }
    }

    // Owner alloc: collect if LOCAL is empty; pop; load M (the linearisation point); quarantine a claimed object.
    private const int AllocPop = 0;
    private const int AllocLoadMark = 1;
    private const int AllocAcknowledge = 2;
    private const int AllocHandOut = 3;
    private const int AllocQuarantine = 4;
    private const int CollectTake = 10;
    private const int CollectLoad = 11;
    private const int CollectStoreState = 12;
    private const int CollectStoreMark = 13;
    private const int CollectLoadMark = 14;

    private void Alloc(State state, StringBuilder? line)
    {
        ThreadState me = state.Threads[0];
        if (me.Pc >= CollectTake)
        {
            Collect(state, line, nested: true);
            return;
        }

        switch (me.Pc)
        {
            case AllocPop:
                if (state.Local.Count > 0)
                {
                    me.Obj = state.Local[^1];
                    state.Local.RemoveAt(state.Local.Count - 1);
                    line?.Append(CultureInfo.InvariantCulture, $"LOCAL.pop() = o{me.Obj}; ");
                    me.Pc = AllocLoadMark;
                }
                else if (!me.Collected)
                {
                    line?.Append("LOCAL empty: collect first; ");
                    me.Collected = true;
                    me.Pc = CollectTake;
                    Collect(state, line, nested: true);
                }
                else
                {
                    line?.Append("LOCAL still empty: returns none");
                    EndCall(me);
                }

                break;
            case AllocLoadMark:
                byte m = Load(state, 0, MLoc(me.Obj), line);
                if (m == 0 || !flags.PopChecksMark)
                {
                    HandOut(state, me.Obj, line);
                    me.Pc = AllocHandOut;
                }
                else
                {
                    me.Pc = AllocAcknowledge;
                }

                break;
            case AllocAcknowledge:
                Drain(state, 0, line);
                if (state.M[me.Obj] == 1)
                {
                    state.M[me.Obj] = Acknowledged;
                    line?.Append(CultureInfo.InvariantCulture, $"CAS(M[o{me.Obj}], 1 -> 2) succeeds; ");
                    if (flags.PopReportsClaim)
                    {
                        Report(state, state.Claim[me.Obj], "reported late (pop)", atCall: false, line);
                    }

                    me.Pc = AllocQuarantine;
                }
                else
                {
                    line?.Append(CultureInfo.InvariantCulture, $"CAS(M[o{me.Obj}], 1 -> 2) fails (M = {state.M[me.Obj]}); ");
                    HandOut(state, me.Obj, line);
                    me.Pc = AllocHandOut;
                }

                break;
            case AllocHandOut:
                Store(state, 0, SLoc(me.Obj), Live, line);
                state.Used++;
                line?.Append(CultureInfo.InvariantCulture, $"returns o{me.Obj}");
                EndCall(me);
                break;
            default:
                Store(state, 0, SLoc(me.Obj), Quar, line);
                line?.Append("tries the next object");
                me.Pc = AllocPop;
                me.Collected = false;
                break;
        }
    }

    // Owner collect: XCHG(THREADFREE, empty); per object load S and release it by its state.
    private void Collect(State state, StringBuilder? line, bool nested)
    {
        ThreadState me = state.Threads[0];
        if (me.Pc < CollectTake)
        {
            me.Pc = CollectTake;
        }

        switch (me.Pc)
        {
            case CollectTake:
                Drain(state, 0, line);
                me.CollectList.Clear();
                me.CollectList.AddRange(state.ThreadFree);
                state.ThreadFree.Clear();
                me.CollectIndex = 0;
                line?.Append(CultureInfo.InvariantCulture, $"XCHG(THREADFREE, empty) takes [{string.Join(", ", me.CollectList.Select(e => string.Create(CultureInfo.InvariantCulture, $"o{e.Obj}")))}]; ");
                if (me.CollectList.Count == 0)
                {
                    FinishCollect(me, nested);
                }
                else
                {
                    me.Pc = CollectLoad;
                }

                break;
            case CollectLoad:
            {
                (byte o, byte call) = me.CollectList[me.CollectIndex];
                byte s = Load(state, 0, SLoc(o), line);
                if (s == Live || !flags.CollectChecksState)
                {
                    me.Loaded = Live;
                    state.HandedOut[o] = false;
                    me.Pc = CollectStoreState;
                }
                else if (s == Quar)
                {
                    me.Loaded = Quar;
                    me.Pc = flags.CollectReportsQuarantined ? CollectLoadMark : CollectStoreState;
                }
                else
                {
                    me.Loaded = Free;
                    Report(state, call, "reported late (collect)", atCall: false, line);
                    me.Pc = CollectStoreMark;
                }

                break;
            }

            case CollectLoadMark:
            {
                // A quarantined object: reported here unless its claimer found the acknowledgement and reported at its
                // call (M = 3); with M = 2 the claimer read a stale LIVE and pushed without a report.
                (byte o, byte call) = me.CollectList[me.CollectIndex];
                if (Load(state, 0, MLoc(o), line) != ReportedByClaimer)
                {
                    Report(state, call, "reported late (collect, quarantined)", atCall: false, line);
                }
                else
                {
                    events.Add("collect releases a quarantined object its claimer reported (M = 3)");
                    line?.Append("no report (M = 3: the claimer reported); ");
                }

                me.Pc = CollectStoreState;
                break;
            }

            case CollectStoreState:
                Store(state, 0, SLoc(me.CollectList[me.CollectIndex].Obj), Free, line);
                me.Pc = CollectStoreMark;
                break;
            default:
            {
                byte o = me.CollectList[me.CollectIndex].Obj;
                Store(state, 0, MLoc(o), 0, line);
                if (me.Loaded != Free)
                {
                    PushLocal(state, o, line);
                    if (me.Loaded == Live)
                    {
                        state.Used--;
                    }
                }

                me.CollectIndex++;
                if (me.CollectIndex == me.CollectList.Count)
                {
                    FinishCollect(me, nested);
                }
                else
                {
                    me.Pc = CollectLoad;
                }

                break;
            }
        }
    }

    private static void FinishCollect(ThreadState me, bool nested)
    {
        me.CollectList.Clear();
        me.CollectIndex = 0;
        if (nested)
        {
            me.Pc = AllocPop;
        }
        else
        {
            EndCall(me);
        }
    }

    // ---- memory, ghost state -----------------------------------------------------------------------------------------

    private static int SLoc(int o) => 2 * o;

    private static int MLoc(int o) => (2 * o) + 1;

    private static string LocName(int loc) => string.Create(CultureInfo.InvariantCulture, $"{((loc & 1) == 0 ? "S" : "M")}[o{loc >> 1}]");

    private static string ValueName(int loc, byte value) => (loc & 1) == 1
        ? value.ToString(CultureInfo.InvariantCulture)
        : value switch { Live => "LIVE", Free => "FREE", Quar => "QUAR", _ => "?" };

    /// <summary>A plain load: the newest store of the location in the own buffer, else memory.</summary>
    private static byte Load(State state, int t, int loc, StringBuilder? line)
    {
        List<(byte Loc, byte Value)> buffer = state.Threads[t].Buffer;
        for (int i = buffer.Count - 1; i >= 0; i--)
        {
            if (buffer[i].Loc == loc)
            {
                line?.Append(CultureInfo.InvariantCulture, $"load {LocName(loc)} = {ValueName(loc, buffer[i].Value)} (own buffer); ");
                return buffer[i].Value;
            }
        }

        byte value = (loc & 1) == 0 ? state.S[loc >> 1] : state.M[loc >> 1];
        line?.Append(CultureInfo.InvariantCulture, $"load {LocName(loc)} = {ValueName(loc, value)}; ");
        return value;
    }

    /// <summary>A plain store (a release store on x86): into the own FIFO buffer.</summary>
    private static void Store(State state, int t, int loc, byte value, StringBuilder? line)
    {
        state.Threads[t].Buffer.Add(((byte)loc, value));
        line?.Append(CultureInfo.InvariantCulture, $"store {LocName(loc)} = {ValueName(loc, value)} (buffered); ");
    }

    private static void Write(State state, int loc, byte value)
    {
        if ((loc & 1) == 0)
        {
            state.S[loc >> 1] = value;
        }
        else
        {
            state.M[loc >> 1] = value;
            state.Claim[loc >> 1] = -1;
        }
    }

    /// <summary>A locked instruction first drains the own buffer to memory.</summary>
    private static void Drain(State state, int t, StringBuilder? line)
    {
        List<(byte Loc, byte Value)> buffer = state.Threads[t].Buffer;
        if (buffer.Count > 0)
        {
            line?.Append(CultureInfo.InvariantCulture, $"drains {buffer.Count} buffered store(s); ");
        }

        foreach ((byte loc, byte value) in buffer)
        {
            Write(state, loc, value);
        }

        buffer.Clear();
    }

    private static void Linearise(State state, int call, int o, StringBuilder? line)
    {
        state.LpGen[call] = state.Gen[o];
        line?.Append(CultureInfo.InvariantCulture, $"[free #{call} linearised in generation {state.Gen[o]}] ");
    }

    private void Report(State state, int call, string kind, bool atCall, StringBuilder? line)
    {
        if (call < 0)
        {
            state.Error ??= "P2: a late report names no claiming free call (M was 1 without a remote's claim)";
            return;
        }

        state.Reports[call]++;
        events.Add(kind);
        if (atCall)
        {
            state.NamedAtCall[call] = 1;
        }
        line?.Append(CultureInfo.InvariantCulture, $"REPORT {kind} for {CallName(call)}; ");
    }

    private void PushLocal(State state, int o, StringBuilder? line)
    {
        line?.Append(CultureInfo.InvariantCulture, $"LOCAL.push(o{o}); ");
        if ((properties & ProtocolProperties.NoDoubleHandOut) != 0)
        {
            if (state.Local.Contains((byte)o))
            {
                state.Error ??= string.Create(CultureInfo.InvariantCulture, $"P1: LOCAL holds o{o} twice");
            }
            else if (state.HandedOut[o])
            {
                state.Error ??= string.Create(CultureInfo.InvariantCulture, $"P1: o{o} pushed on LOCAL while it is handed out");
            }
        }

        state.Local.Add((byte)o);
    }

    private void HandOut(State state, int o, StringBuilder? line)
    {
        if ((properties & ProtocolProperties.NoDoubleHandOut) != 0)
        {
            if (state.HandedOut[o])
            {
                state.Error ??= string.Create(CultureInfo.InvariantCulture, $"P1: o{o} handed out while it is handed out");
            }
            else if (state.Local.Contains((byte)o))
            {
                state.Error ??= string.Create(CultureInfo.InvariantCulture, $"P1: o{o} handed out while still on LOCAL");
            }
        }

        state.HandedOut[o] = true;
        state.Gen[o]++;
        line?.Append(CultureInfo.InvariantCulture, $"[hands out o{o}: generation {state.Gen[o]}] ");
    }

    // ---- the end-of-schedule check -----------------------------------------------------------------------------------

    private string? CheckEnd(State state)
    {
        var problems = new List<string>();
        bool p1 = (properties & ProtocolProperties.NoDoubleHandOut) != 0;
        bool p2 = (properties & ProtocolProperties.DoubleFreesReported) != 0;
        bool p3 = (properties & ProtocolProperties.CountsConsistent) != 0;
        bool p4 = (properties & ProtocolProperties.OneReportPerDoubleFree) != 0;
        bool p5 = (properties & ProtocolProperties.NamedAtCall) != 0;
        int handedOut = 0;
        for (int o = 0; o < scenario.Objects; o++)
        {
            // Unreported free calls per generation of o.
            var unreported = new int[state.Gen[o] + 1];
            int reports = 0;
            for (int c = 0; c < calls.Count; c++)
            {
                if (calls[c].Obj != o)
                {
                    continue;
                }

                if (state.LpGen[c] == 0)
                {
                    problems.Add(string.Create(CultureInfo.InvariantCulture, $"{CallName(c)} never linearised"));
                    continue;
                }

                if (p5 && state.MustNameAtCall[c] != 0 && state.NamedAtCall[c] == 0)
                {
                    problems.Add(string.Create(CultureInfo.InvariantCulture, $"P5: {CallName(c)} claimed o{o} after its release reached memory but was not named at the call"));
                }

                reports += state.Reports[c];
                if (state.Reports[c] == 0)
                {
                    unreported[state.LpGen[c]]++;
                }
                else if (p4 && state.Reports[c] > 1)
                {
                    problems.Add(string.Create(CultureInfo.InvariantCulture, $"P4: {CallName(c)} reported {state.Reports[c]} times"));
                }
            }

            for (int g = 1; g <= state.Gen[o]; g++)
            {
                if (p2 && unreported[g] > 1)
                {
                    problems.Add(string.Create(CultureInfo.InvariantCulture, $"P2: o{o} generation {g} freed {unreported[g]} times without a report"));
                }

                if (p1 && g < state.Gen[o] && unreported[g] == 0)
                {
                    problems.Add(string.Create(CultureInfo.InvariantCulture, $"P1: o{o} handed out again (generation {g + 1}) although generation {g} was never freed"));
                }
            }

            if (p2 && freesPerObject[o] <= 1 && reports > 0)
            {
                problems.Add(string.Create(CultureInfo.InvariantCulture, $"P2: o{o} is freed once by the program but {reports} report(s) were made"));
            }

            if (p4 && freesPerObject[o] >= 1 && reports > freesPerObject[o] - 1)
            {
                problems.Add(string.Create(CultureInfo.InvariantCulture, $"P4: o{o} has {freesPerObject[o] - 1} double free(s) but {reports} report(s)"));
            }

            // Handed out at the end: the current generation has not been freed.
            bool handed = unreported[state.Gen[o]] == 0;
            bool onLocal = state.Local.Contains((byte)o);
            handedOut += handed ? 1 : 0;
            if (p1 && handed && onLocal)
            {
                problems.Add(string.Create(CultureInfo.InvariantCulture, $"P1: o{o} (generation {state.Gen[o]}) is on LOCAL and handed out"));
            }

            if (p3)
            {
                if (!handed && !onLocal)
                {
                    problems.Add(string.Create(CultureInfo.InvariantCulture, $"P3: o{o} is lost (freed, not on LOCAL, S = {ValueName(0, state.S[o])}, M = {state.M[o]})"));
                }

                if (handed != state.HandedOut[o])
                {
                    problems.Add(string.Create(CultureInfo.InvariantCulture, $"P3: the heap {(state.HandedOut[o] ? "holds" : "does not hold")} o{o} as handed out, the program {(handed ? "does" : "does not")}"));
                }

                byte expected = handed ? Live : Free;
                if (state.S[o] != expected || state.M[o] != 0)
                {
                    problems.Add(string.Create(CultureInfo.InvariantCulture, $"P3: o{o} at quiescence has S = {ValueName(0, state.S[o])}, M = {state.M[o]} (expected {ValueName(0, expected)}, 0)"));
                }
            }
        }

        if (p3 && state.ThreadFree.Count > 0)
        {
            problems.Add("P3: THREADFREE not empty after the final collect");
        }

        if (p3 && state.Used != handedOut)
        {
            problems.Add(string.Create(CultureInfo.InvariantCulture, $"P3: Used = {state.Used} but {handedOut} object(s) are handed out"));
        }

        if (p1 && state.Local.Count != state.Local.Distinct().Count())
        {
            problems.Add("P1: LOCAL holds an object twice");
        }

        return problems.Count == 0 ? null : string.Join("; ", problems);
    }

    // ---- state -------------------------------------------------------------------------------------------------------

    private sealed class ThreadState
    {
        public int Op;
        public int Pc;
        public int Obj;
        public byte Loaded;
        public bool ReportAfterPush;
        public bool Collected;
        public List<(byte Obj, byte Call)> CollectList = [];
        public int CollectIndex;
        public List<(byte Loc, byte Value)> Buffer = [];

        public ThreadState Clone() => new()
        {
            Op = Op,
            Pc = Pc,
            Obj = Obj,
            Loaded = Loaded,
            ReportAfterPush = ReportAfterPush,
            Collected = Collected,
            CollectList = [.. CollectList],
            CollectIndex = CollectIndex,
            Buffer = [.. Buffer],
        };
    }

    private sealed class State
    {
        public required byte[] S;
        public required byte[] M;
        public required sbyte[] Claim; // ghost: the free call whose claim set M to 1
        public required byte[] Gen; // ghost: the object's generation
        public required bool[] HandedOut; // ghost: the heap's view
        public List<byte> Local = [];
        public List<(byte Obj, byte Call)> ThreadFree = [];
        public int Used;
        public required byte[] LpGen; // ghost: per free call, the generation at its linearisation point (0: not yet)
        public required byte[] Reports; // ghost: per free call, the reports naming it
        public required byte[] NamedAtCall; // ghost: per free call, whether a report named it at the call
        public required byte[] MustNameAtCall; // ghost: per free call, whether its claim came after S != LIVE reached memory
        public required ThreadState[] Threads;
        public string? Error;

        public State Clone() => new()
        {
            S = (byte[])S.Clone(),
            M = (byte[])M.Clone(),
            Claim = (sbyte[])Claim.Clone(),
            Gen = (byte[])Gen.Clone(),
            HandedOut = (bool[])HandedOut.Clone(),
            Local = [.. Local],
            ThreadFree = [.. ThreadFree],
            Used = Used,
            LpGen = (byte[])LpGen.Clone(),
            Reports = (byte[])Reports.Clone(),
            NamedAtCall = (byte[])NamedAtCall.Clone(),
            MustNameAtCall = (byte[])MustNameAtCall.Clone(),
            Threads = [.. Threads.Select(t => t.Clone())],
            Error = Error,
        };

        public byte[] Encode()
        {
            var bytes = new List<byte>(64);
            bytes.AddRange(S);
            bytes.AddRange(M);
            bytes.AddRange(Claim.Select(c => (byte)c));
            bytes.AddRange(Gen);
            bytes.AddRange(HandedOut.Select(h => h ? (byte)1 : (byte)0));
            bytes.Add(0xFF);
            bytes.AddRange(Local);
            bytes.Add(0xFF);
            foreach ((byte obj, byte call) in ThreadFree)
            {
                bytes.Add(obj);
                bytes.Add(call);
            }

            bytes.Add(0xFF);
            bytes.Add((byte)(Used + 128));
            bytes.AddRange(LpGen);
            bytes.AddRange(Reports);
            bytes.AddRange(NamedAtCall);
            bytes.AddRange(MustNameAtCall);
            foreach (ThreadState t in Threads)
            {
                bytes.Add((byte)t.Op);
                bytes.Add((byte)t.Pc);
                bytes.Add((byte)t.Obj);
                bytes.Add(t.Loaded);
                bytes.Add((byte)((t.ReportAfterPush ? 1 : 0) | (t.Collected ? 2 : 0)));
                bytes.Add((byte)t.CollectIndex);
                foreach ((byte obj, byte call) in t.CollectList)
                {
                    bytes.Add(obj);
                    bytes.Add(call);
                }

                bytes.Add(0xFF);
                foreach ((byte loc, byte value) in t.Buffer)
                {
                    bytes.Add(loc);
                    bytes.Add(value);
                }

                bytes.Add(0xFF);
            }

            bytes.Add(Error is null ? (byte)0 : (byte)1);
            return [.. bytes];
        }
    }

    private sealed class ByteArrayComparer : IEqualityComparer<byte[]>
    {
        public static ByteArrayComparer Instance { get; } = new();

        public bool Equals(byte[]? x, byte[]? y) => x.AsSpan().SequenceEqual(y);

        public int GetHashCode(byte[] obj)
        {
            var hash = new HashCode();
            hash.AddBytes(obj);
            return hash.ToHashCode();
        }
    }
}
