namespace BuddySystem.Testing;

/// <summary>The SplitMix64 generator of docs/benchmarks.md: every workload and random test draws from it, so a seed fixes a run.</summary>
internal struct SplitMix64(ulong seed)
{
    private ulong _state = seed;

    /// <summary>The next 64 random bits (wrapping arithmetic).</summary>
    public ulong Next()
    {
        unchecked
        {
            _state += 0x9E3779B97F4A7C15;
            ulong z = _state;
            z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9;
            z = (z ^ (z >> 27)) * 0x94D049BB133111EB;
            return z ^ (z >> 31);
        }
    }

    /// <summary>A value in [0, bound), taken as <c>Next() % bound</c> exactly as the workloads specify.</summary>
    public ulong Next(ulong bound) => Next() % bound;
}
