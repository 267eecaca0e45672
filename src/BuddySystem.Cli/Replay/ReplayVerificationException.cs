namespace BuddySystem.Cli.Replay;

/// <summary>A block's fill pattern changed while it was live: another live block overlapped it (or the allocator lost data on reallocate).</summary>
internal sealed class ReplayVerificationException : Exception
{
    /// <summary>Creates the exception (for serializers and analyzers).</summary>
    public ReplayVerificationException()
    {
    }

    /// <summary>Creates the exception with a message.</summary>
    public ReplayVerificationException(string message)
        : base(message)
    {
    }

    /// <summary>Creates the exception with a message and a cause.</summary>
    public ReplayVerificationException(string message, Exception innerException)
        : base(message, innerException)
    {
    }
}
