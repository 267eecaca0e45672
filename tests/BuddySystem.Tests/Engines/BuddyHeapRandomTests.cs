using BuddySystem.Testing;

namespace BuddySystem.Tests;

/// <summary>A long random run against a reference model: every live block patterned and checked on free.</summary>
public unsafe class BuddyHeapRandomTests
{
    private readonly record struct Live(nint Address, Layout Layout, ulong Pattern);

    internal static void RunAgainstModel(IAllocator heap, Action validate, Func<HeapStats> stats, ulong seed, int operations, nuint heapSize)
    {
        var rng = new SplitMix64(seed);
        var live = new List<Live>();
        var intervals = new SortedDictionary<ulong, ulong>();
        ulong allocatedModel = 0;
        for (int op = 1; op <= operations; op++)
        {
            ulong roll = rng.Next(100);
            if (live.Count == 0 || roll < 52)
            {
                int e = (int)rng.Next(12);
                var layout = new Layout((nuint)((1UL << e) + rng.Next(1UL << e)) - 1, (nuint)1 << (int)rng.Next(6));
                byte* block = (byte*)heap.Allocate(layout);
                if (block == null)
                {
                    continue;
                }

                ulong blockSize = BuddyHeap.BlockSizeOf(layout);
                Assert.Equal(0ul, (ulong)block % layout.Align);
                Assert.Equal(0ul, (ulong)block % blockSize);
                allocatedModel += blockSize;
                ulong pattern = rng.Next() | 1;
                Fill(block, layout.Size, pattern);
                live.Add(new Live((nint)block, layout, pattern));
            }
            else
            {
                int index = (int)rng.Next((ulong)live.Count);
                Live victim = live[index];
                live[index] = live[^1];
                live.RemoveAt(live.Count - 1);
                Check((byte*)victim.Address, victim.Layout.Size, victim.Pattern);
                heap.Deallocate((void*)victim.Address, victim.Layout);
                allocatedModel -= BuddyHeap.BlockSizeOf(victim.Layout);
            }

            if (op % 1000 == 0)
            {
                validate();
                Assert.Equal(allocatedModel, stats().AllocatedBytes);
            }
        }

        foreach (Live block in live)
        {
            Check((byte*)block.Address, block.Layout.Size, block.Pattern);
            heap.Deallocate((void*)block.Address, block.Layout);
        }

        validate();
        Assert.Equal(0ul, stats().AllocatedBytes);
        void* whole = heap.Allocate(new Layout(heapSize, 1));
        Assert.True(whole != null, "the whole heap should be allocatable again once everything is freed");
        heap.Deallocate(whole, new Layout(heapSize, 1));
    }

    internal static void Fill(byte* block, nuint size, ulong pattern)
    {
        for (nuint i = 0; i < size; i++)
        {
            block[i] = (byte)(pattern >> (int)(i % 8 * 8));
        }
    }

    internal static void Check(byte* block, nuint size, ulong pattern)
    {
        for (nuint i = 0; i < size; i++)
        {
            if (block[i] != (byte)(pattern >> (int)(i % 8 * 8)))
            {
                Assert.Fail($"block 0x{(ulong)block:x} byte {i} was overwritten while live");
            }
        }
    }

    /// <summary>The engine configurations every random run covers: lazy (default), eager, and tiny caches that flush often.</summary>
    internal static BuddyHeapOptions OptionsFor(string name) => name switch
    {
        "lazy" => BuddyHeapOptions.Default,
        "eager" => BuddyHeapOptions.Eager,
        "tiny-caches" => new BuddyHeapOptions { CacheCapacity = 4, MaxCachedOrder = 11, CacheBytesPerOrder = 256 },
        _ => throw new ArgumentOutOfRangeException(nameof(name)),
    };

    [Theory]
    [InlineData("lazy")]
    [InlineData("eager")]
    [InlineData("tiny-caches")]
    public void RandomOperations_OneMillion_MatchModelAndValidate(string configuration)
    {
        const nuint size = 1 << 20;
        using var heap = BuddyHeap.Create(size, OptionsFor(configuration));
        RunAgainstModel(heap, heap.Validate, () => heap.Stats, 0x5EED, 1_000_000, size);
        heap.Trim();
        Assert.Equal(size, (nuint)heap.Stats.LargestFreeBlock);
    }

    [Theory]
    [InlineData("lazy")]
    [InlineData("eager")]
    public void RandomOperations_LockedHeap_MatchModelAndValidate(string configuration)
    {
        const nuint size = 1 << 20;
        using var heap = LockedHeap.Create(size, options: OptionsFor(configuration));
        RunAgainstModel(heap, heap.Validate, () => heap.Stats, 0xBEEF, 200_000, size);
    }
}
