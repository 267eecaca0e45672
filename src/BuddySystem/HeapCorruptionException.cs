namespace BuddySystem;

/// <summary>Thrown by <c>Validate()</c> when an invariant of an allocator's metadata does not hold.</summary>
/// <remarks>Its message starts with <c>BuddySystem: heap corruption:</c> and says which invariant failed where.</remarks>
public sealed class HeapCorruptionException : InvalidOperationException
{
    /// <summary>The prefix of every corruption message.</summary>
    public const string Prefix = "BuddySystem: heap corruption: ";

    /// <summary>Creates an exception with a generic message.</summary>
    public HeapCorruptionException()
        : base(Prefix + "an invariant does not hold.")
    {
    }

    /// <summary>Creates an exception whose message is <see cref="Prefix"/> followed by <paramref name="message"/>.</summary>
    /// <param name="message">What is wrong, and where.</param>
    public HeapCorruptionException(string message)
        : base(message.StartsWith(Prefix, StringComparison.Ordinal) ? message : Prefix + message)
    {
    }

    /// <summary>Creates an exception with a message and a cause.</summary>
    /// <param name="message">What is wrong, and where.</param>
    /// <param name="innerException">The cause.</param>
    public HeapCorruptionException(string message, Exception innerException)
        : base(Prefix + message, innerException)
    {
    }
}
