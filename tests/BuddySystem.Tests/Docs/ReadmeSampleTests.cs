using System.Text.RegularExpressions;
using BuddySystem.Buffers;

namespace BuddySystem.Tests.Docs;

/// <summary>
/// The README's C# samples compile and run as written: each ```csharp block of README.md must appear line for line in a
/// method of <see cref="ReadmeSamples"/> (or, for the Kestrel sample, of the AspNetCore test project's), with its
/// <c>using</c> directives at the top of that file; the tests here run every sample but Kestrel's, which its project runs.
/// </summary>
public sealed partial class ReadmeSampleTests
{
    [Fact]
    public void EveryReadmeBlock_AppearsLineForLineInASampleFile()
    {
        string readme = File.ReadAllText(RepositoryFiles.Path("README.md"));
        string[] samples =
        [
            File.ReadAllText(RepositoryFiles.Path("tests", "BuddySystem.Tests", "Docs", "ReadmeSamples.cs")),
            File.ReadAllText(RepositoryFiles.Path("tests", "BuddySystem.AspNetCore.Tests", "ReadmeSamples.cs")),
        ];
        MatchCollection blocks = CSharpBlock().Matches(readme);
        Assert.Equal(11, blocks.Count);
        foreach (Match block in blocks)
        {
            string[] lines = block.Groups[1].Value.TrimEnd('\n').Split('\n');
            string[] directives = [.. lines.Where(line => UsingDirective().IsMatch(line))];
            string body = string.Join('\n', lines.Where(line => !UsingDirective().IsMatch(line)).Select(line => line.Length == 0 ? line : "        " + line));
            Assert.True(samples.Any(sample => sample.Replace("\r\n", "\n", StringComparison.Ordinal).Contains(body, StringComparison.Ordinal)
                && directives.All(directive => sample.Contains(directive + "\n", StringComparison.Ordinal))),
                "README block not found line for line in a ReadmeSamples.cs:\n" + block.Groups[1].Value);
        }
    }

    [Fact]
    public void HeapSamples_Run()
    {
        ReadmeSamples.QuickStart();
        ReadmeSamples.ConcurrentHeapCalls();
        ReadmeSamples.SlabHeapCalls();
        ReadmeSamples.BuddyTreeOffsets();
        ReadmeSamples.Collections();
        ReadmeSamples.PipelinesPool();
        ReadmeSamples.Hardening();
        using var heap = ConcurrentHeap.Create(1 << 20);
        using var pool = new BuddyMemoryPool(heap);
        ReadmeSamples.Metrics(heap, pool);
        ReadmeSamples.Snapshot(heap);
    }

    [LinuxFact]
    public void SharedHeapSample_RunsTwice()
    {
        File.Delete("/dev/shm/cache.heap");
        try
        {
            ReadmeSamples.SharedHeapTwoProcesses();
            ReadmeSamples.SharedHeapTwoProcesses(); // opens the heap the first run made
        }
        finally
        {
            File.Delete("/dev/shm/cache.heap");
        }
    }

    [GeneratedRegex(@"```csharp\n(.*?)```", RegexOptions.Singleline)]
    private static partial Regex CSharpBlock();

    [GeneratedRegex(@"^using [A-Za-z.]+;$")]
    private static partial Regex UsingDirective();
}
