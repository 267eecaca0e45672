using BuddySystem.Collections;
using BuddySystem.Testing;

namespace BuddySystem.Tests.Reliability;

/// <summary>
/// Item 7 of issue 6 on every engine: exhaust the heap with random sizes, then check that Allocate returns null (the
/// GlobalAlloc contract), typed fronts throw <see cref="HeapExhaustedException"/> naming the request and the largest free
/// block, the heap validates, and freeing one block lets a request of that size succeed again.
/// </summary>
public unsafe class OutOfMemoryTests
{
    private const nuint HeapSize = 256 << 10;

    public static TheoryData<string, ulong> EnginesAndSeeds
    {
        get
        {
            var rows = new TheoryData<string, ulong>();
            foreach (string engine in EngineCatalog.TargetNames)
            {
                rows.Add(engine, 1);
                rows.Add(engine, 0x5EED);
            }

            return rows;
        }
    }

    /// <summary>Allocates random sizes until the first null, then 16-byte blocks until not even one fits.</summary>
    private static List<(nint Address, Layout Layout)> Exhaust(HeapTarget target, ulong seed)
    {
        var rng = new SplitMix64(seed);
        var blocks = new List<(nint, Layout)>();
        while (true)
        {
            Layout layout = SoakRun.RandomLayout(ref rng);
            void* block = target.Allocator.Allocate(layout);
            if (block == null)
            {
                break;
            }

            blocks.Add(((nint)block, layout));
        }

        var smallest = new Layout(0, 1);
        for (void* block; (block = target.Allocator.Allocate(smallest)) != null;)
        {
            blocks.Add(((nint)block, smallest));
        }

        return blocks;
    }

    [Theory]
    [MemberData(nameof(EnginesAndSeeds))]
    public void Exhausted_RandomSizes_NullThenExceptionThenOneFreeServesAgain(string engine, ulong seed)
    {
        using HeapTarget target = EngineCatalog.CreateTarget(engine, HeapSize);
        List<(nint Address, Layout Layout)> blocks = Exhaust(target, seed);
        Assert.True(blocks.Count > 10);

        // Nothing usable is left: the free bytes open to any request (none, or 16 on a hardened heap, whose smallest block
        // is 32) hold no block for even the smallest request, which returns null. A slab engine's other free bytes are
        // free objects of other classes: only their class can use them.
        HeapStats full = target.Stats;
        ulong open = full.FreeBytes - target.ClassBoundFreeBytes(full);
        Assert.True(open < target.BlockSize(new Layout(0, 1)), $"{open} bytes still free outside size classes");
        Assert.Equal(full.TotalBytes - full.FreeBytes, full.AllocatedBytes);
        Assert.True(target.Allocator.Allocate(new Layout(0, 1)) == null);
        target.Validate();

        // A typed front turns null into HeapExhaustedException naming the request and the largest free block.
        var boxError = Assert.Throws<HeapExhaustedException>(() => new Box<long>(target.Allocator, 1));
        Assert.Equal(8ul, boxError.RequestedSize);
        Assert.Equal(open, boxError.LargestFreeBlock);
        Assert.Equal(full.FreeBytes, boxError.FreeBytes);
        Assert.Contains("8 bytes", boxError.Message, StringComparison.Ordinal);

        // Free one random block: a request of its size succeeds again. On a buddy engine it is the only free space, so
        // the request gets the same address, one of twice its block size fails, and the exception names exactly that
        // block as the largest free one (its buddy is live, so it cannot merge). A slab object goes back to its slab,
        // which only its class can use: the request is served from that class (the freed object or another free one).
        var rng = new SplitMix64(seed ^ 0xF00D);
        int victim = (int)rng.Next((ulong)blocks.Count);
        var (address, layout) = blocks[victim];
        ulong blockSize = target.BlockSize(layout);
        target.Allocator.Deallocate((void*)address, layout);
        target.Validate();
        Assert.Equal(full.FreeBytes + blockSize, target.Stats.FreeBytes);
        bool slabObject = target.IsSlabObject(layout);
        if (blockSize < HeapSize && !slabObject)
        {
            int tooMany = (int)(blockSize * 2);
            var vecError = Assert.Throws<HeapExhaustedException>(() => new Vec<byte>(target.Allocator, tooMany));
            Assert.Equal((ulong)tooMany, vecError.RequestedSize);
            Assert.Equal(blockSize, vecError.LargestFreeBlock);
            Assert.Equal(blockSize + full.FreeBytes, vecError.FreeBytes);
            target.Validate();
        }

        void* again = target.Allocator.Allocate(layout);
        Assert.True(again != null, $"freeing a {blockSize}-byte block did not let {layout} succeed again");
        if (!slabObject)
        {
            Assert.Equal(address, (nint)again); // it is the only free space
        }

        blocks[victim] = ((nint)again, layout);
        Assert.Equal(full.FreeBytes, target.Stats.FreeBytes);

        foreach (var (block, blockLayout) in blocks)
        {
            target.Allocator.Deallocate((void*)block, blockLayout);
        }

        target.Validate();
        Assert.Equal(0ul, target.Stats.AllocatedBytes);
        void* whole = target.Allocator.Allocate(target.WholeBlock(HeapSize));
        Assert.True(whole != null, "the heap should merge back into one block");
    }

    [Fact]
    public void BuddyTree_Exhausted_TryAllocateFalseAllocateThrowsAndFreeServesAgain()
    {
        var tree = new BuddyTree(HeapSize, 16);
        var rng = new SplitMix64(42);
        var offsets = new List<(ulong Offset, ulong Size)>();
        while (true)
        {
            ulong size = SoakRun.RandomLayout(ref rng).Size;
            if (!tree.TryAllocate(size, 1, out ulong offset))
            {
                Assert.Equal(0ul, offset);
                break;
            }

            offsets.Add((offset, size));
        }

        while (tree.TryAllocate(1, 1, out ulong offset))
        {
            offsets.Add((offset, 1));
        }

        Assert.Equal(HeapSize, tree.Stats.AllocatedBytes);
        tree.Validate();
        var error = Assert.Throws<HeapExhaustedException>(() => tree.Allocate(100));
        Assert.Equal(100ul, error.RequestedSize);
        Assert.Equal(0ul, error.LargestFreeBlock);

        var (freedOffset, freedSize) = offsets[offsets.Count / 2];
        tree.Free(freedOffset, freedSize);
        ulong blockSize = tree.Stats.LargestFreeBlock;
        var tooLarge = Assert.Throws<HeapExhaustedException>(() => tree.Allocate(blockSize + 1));
        Assert.Equal(blockSize, tooLarge.LargestFreeBlock);
        Assert.Equal(freedOffset, tree.Allocate(freedSize));
        tree.Validate();
    }
}
