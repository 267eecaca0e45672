namespace BuddySystem.Cli;

/// <summary>
/// Input the command line could not check while parsing (a combination of options, a file's contents): the tool prints
/// <c>buddy COMMAND: message</c> on standard error and exits 2.
/// </summary>
internal sealed class BadInputException : Exception
{
    /// <summary>Creates the exception with the one line the user will read.</summary>
    public BadInputException(string message)
        : base(message)
    {
    }

    /// <summary>Creates the exception with the one line the user will read and the error behind it.</summary>
    public BadInputException(string message, Exception inner)
        : base(message, inner)
    {
    }
}
