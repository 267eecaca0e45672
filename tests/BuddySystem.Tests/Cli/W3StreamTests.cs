using BuddySystem.Cli.Bench;
using BuddySystem.Testing;

namespace BuddySystem.Tests;

public class W3StreamTests
{
    // SplitMix64 written out again from DESIGN.md §5, independent of the CLI's struct, so the test checks the definition.
    private static ulong Reference(ref ulong state)
    {
        unchecked
        {
            state += 0x9E3779B97F4A7C15UL;
            ulong z = state;
            z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
            z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
            return z ^ (z >> 31);
        }
    }

    [Fact]
    public void SplitMix64_SeedZero_GivesThePublishedFirstOutput()
    {
        // The first output of SplitMix64 from state 0 is 0xE220A8397B1DCDAF (Vigna's reference implementation).
        var random = new SplitMix64(0);
        Assert.Equal(0xE220A8397B1DCDAFUL, random.Next());
    }

    [Fact]
    public void Next_Seed5EED_FirstOpsMatchTheDefinition()
    {
        ulong state = 0x5EED;
        var expected = new List<W3Op>();
        int live = 0;
        for (int i = 0; i < 50; i++)
        {
            bool allocate = live == 0 || (live < 10_000 && Reference(ref state) % 2 == 0);
            if (allocate)
            {
                int e = 3 + (int)(Reference(ref state) % 13);
                ulong size = (1UL << e) + (Reference(ref state) % (1UL << e));
                expected.Add(new W3Op(true, live++, size));
            }
            else
            {
                expected.Add(new W3Op(false, (int)(Reference(ref state) % (ulong)live), 0));
                live--;
            }
        }

        var stream = new W3Stream(W3Stream.DefaultSeed);
        var actual = Enumerable.Range(0, 50).Select(_ => stream.Next()).ToList();
        Assert.Equal(expected, actual);
        Assert.Equal(live, stream.Live);

        // The very first op allocates without a coin flip: e and the size offset are the first two outputs.
        ulong s0 = 0x5EED;
        ulong first = Reference(ref s0), second = Reference(ref s0);
        Assert.Equal((1UL << (int)(3 + first % 13)) + second % (1UL << (int)(3 + first % 13)), actual[0].Size);
    }

    [Fact]
    public void Next_LongRun_StaysWithinTheCapAndSizeRange()
    {
        var stream = new W3Stream(W3Stream.DefaultSeed);
        int live = 0, maxLive = 0;
        for (int i = 0; i < 200_000; i++)
        {
            W3Op op = stream.Next();
            if (op.IsAllocate)
            {
                Assert.Equal(live, op.Index);
                Assert.InRange(op.Size, 8UL, (1UL << 16) - 1);
                live++;
            }
            else
            {
                Assert.InRange(op.Index, 0, live - 1);
                live--;
            }

            maxLive = Math.Max(maxLive, live);
        }

        Assert.Equal(live, stream.Live);
        Assert.InRange(maxLive, 1, W3Stream.LiveCap);
    }

    [Fact]
    public void Next_SameSeed_GivesSameSequence()
    {
        var a = new W3Stream(7);
        var b = new W3Stream(7);
        var c = new W3Stream(8);
        var fromA = Enumerable.Range(0, 100).Select(_ => a.Next()).ToList();
        Assert.Equal(fromA, Enumerable.Range(0, 100).Select(_ => b.Next()).ToList());
        Assert.NotEqual(fromA, Enumerable.Range(0, 100).Select(_ => c.Next()).ToList());
    }
}
