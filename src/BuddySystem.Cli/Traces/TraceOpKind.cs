namespace BuddySystem.Cli.Traces;

/// <summary>The three operations of the trace format of docs/benchmarks.md.</summary>
internal enum TraceOpKind : byte
{
    /// <summary><c>a &lt;id&gt; &lt;size&gt; &lt;align&gt;</c>: allocate.</summary>
    Allocate,

    /// <summary><c>f &lt;id&gt;</c>: free.</summary>
    Free,

    /// <summary><c>r &lt;id&gt; &lt;newsize&gt;</c>: reallocate, keeping the id.</summary>
    Reallocate,
}
