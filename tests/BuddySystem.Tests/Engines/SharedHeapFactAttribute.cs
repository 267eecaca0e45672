namespace BuddySystem.Tests.Engines;

/// <summary>A fact about <see cref="SharedHeap"/>, which needs Linux with glibc (its lock is glibc's robust mutex);
/// skipped, saying so, elsewhere.</summary>
public sealed class SharedHeapFactAttribute : FactAttribute
{
    public SharedHeapFactAttribute()
    {
        if (!OperatingSystem.IsLinux() || !File.Exists("/proc/self/status"))
        {
            Skip = "SharedHeap needs Linux with glibc (a robust process-shared pthread mutex, mmap, /proc).";
        }
    }
}
