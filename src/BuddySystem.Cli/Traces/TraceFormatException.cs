namespace BuddySystem.Cli.Traces;

/// <summary>A trace that does not follow the format of docs/benchmarks.md: the message names the line.</summary>
internal sealed class TraceFormatException : Exception
{
    /// <summary>Creates the exception for <paramref name="line"/> of <paramref name="source"/>.</summary>
    public TraceFormatException(string source, long line, string problem)
        : base($"{source}:{line}: {problem}")
    {
        Line = line;
    }

    /// <summary>Creates the exception without a line (for serializers and analyzers).</summary>
    public TraceFormatException()
    {
    }

    /// <summary>Creates the exception with a message.</summary>
    public TraceFormatException(string message)
        : base(message)
    {
    }

    /// <summary>Creates the exception with a message and a cause.</summary>
    public TraceFormatException(string message, Exception innerException)
        : base(message, innerException)
    {
    }

    /// <summary>The 1-based line at fault (0 when not about one line).</summary>
    public long Line { get; }
}
