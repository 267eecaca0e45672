namespace BuddySystem.Tests;

/// <summary>A fact that needs Linux (its processes, signals, mapped files or /proc); skipped, saying so, elsewhere.</summary>
public sealed class LinuxFactAttribute : FactAttribute
{
    public LinuxFactAttribute()
    {
        if (!OperatingSystem.IsLinux())
        {
            Skip = LinuxOnly.Reason;
        }
    }
}

/// <summary>A theory that needs Linux; skipped, saying so, elsewhere.</summary>
public sealed class LinuxTheoryAttribute : TheoryAttribute
{
    public LinuxTheoryAttribute()
    {
        if (!OperatingSystem.IsLinux())
        {
            Skip = LinuxOnly.Reason;
        }
    }
}

/// <summary>Why a Linux-only test is skipped.</summary>
internal static class LinuxOnly
{
    public const string Reason = "Linux only: the test runs processes, signals, mapped files or programs as this project does on Linux.";
}
