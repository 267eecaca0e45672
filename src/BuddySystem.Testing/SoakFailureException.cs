namespace BuddySystem.Testing;

/// <summary>A reliability workload saw the allocator break a promise: corrupted contents, a misaligned block, wrong accounting.</summary>
internal sealed class SoakFailureException : Exception
{
    public SoakFailureException()
    {
    }

    public SoakFailureException(string message)
        : base(message)
    {
    }

    public SoakFailureException(string message, Exception innerException)
        : base(message, innerException)
    {
    }
}
