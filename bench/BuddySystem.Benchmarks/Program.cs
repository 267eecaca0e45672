using BenchmarkDotNet.Running;

namespace BuddySystem.Benchmarks;

/// <summary>Micro-benchmarks of the heap's hot paths; pick them with <c>--filter</c>.</summary>
internal static class Program
{
    private static void Main(string[] args) => BenchmarkSwitcher.FromAssembly(typeof(Program).Assembly).Run(args);
}
