using System.Globalization;
using System.Numerics;

namespace BuddySystem.Testing;

/// <summary>What a <see cref="SoakRun"/> did.</summary>
internal readonly record struct SoakResult(
    string Engine,
    long Operations,
    long Allocations,
    long FailedAllocations,
    long Frees,
    long Reallocations,
    long Validations,
    long PeakLiveBlocks,
    ulong BytesChecked,
    TimeSpan Elapsed);

/// <summary>
/// The long random run of issue 6: allocate, free and reallocate random layouts on one engine, with every live block
/// patterned (<see cref="BlockPattern"/>) and checked when freed or moved, <c>Validate()</c> and the byte accounting
/// checked every <c>validateEvery</c> operations, and at the end everything freed, zero allocated bytes, and the
/// largest block of the fresh heap allocatable again. Any broken promise throws <see cref="SoakFailureException"/>.
/// </summary>
internal static unsafe class SoakRun
{
    /// <summary>Live blocks are capped so that the run mixes full and empty phases instead of drifting to exhaustion.</summary>
    internal const int DefaultLiveCap = 10_000;

    private struct Live
    {
        public nint Address;
        public nuint Size;
        public nuint Align;
        public ulong Cookie;
    }

    internal static SoakResult Run(HeapTarget target, ulong seed, long operations, int validateEvery = 1000, int liveCap = DefaultLiveCap, Action<long>? progress = null)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(operations);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(validateEvery);
        var started = System.Diagnostics.Stopwatch.StartNew();
        IAllocator heap = target.Allocator;
        var rng = new SplitMix64(seed);
        var live = new Live[liveCap];
        int count = 0;
        ulong allocatedModel = 0;
        ulong userModel = 0;
        long allocations = 0, failed = 0, frees = 0, reallocations = 0, validations = 0, peak = 0;
        ulong checkedBytes = 0;
        HeapStats initial = target.Stats;
        ulong largestAtStart = initial.LargestFreeBlock;

        for (long op = 1; op <= operations; op++)
        {
            ulong roll = rng.Next(100);
            if (count == 0 || (count < liveCap && roll < 50))
            {
                var layout = RandomLayout(ref rng);
                byte* block = (byte*)heap.Allocate(layout);
                if (block == null)
                {
                    failed++;
                }
                else
                {
                    CheckPlacement(block, layout, target.BlockAlignment(layout), op);
                    ulong cookie = rng.Next() | 1;
                    BlockPattern.Fill(block, layout.Size, cookie);
                    live[count++] = new Live { Address = (nint)block, Size = layout.Size, Align = layout.Align, Cookie = cookie };
                    allocatedModel += target.BlockSize(layout);
                    userModel += layout.Size;
                    allocations++;
                    peak = Math.Max(peak, count);
                }
            }
            else if (roll < 85)
            {
                int index = (int)rng.Next((ulong)count);
                Live victim = live[index];
                checkedBytes += CheckContents(victim, victim.Size, op, "free");
                heap.Deallocate((void*)victim.Address, new Layout(victim.Size, victim.Align));
                live[index] = live[--count];
                allocatedModel -= target.BlockSize(new Layout(victim.Size, victim.Align));
                userModel -= victim.Size;
                frees++;
            }
            else
            {
                int index = (int)rng.Next((ulong)count);
                ref Live block = ref live[index];
                var oldLayout = new Layout(block.Size, block.Align);
                nuint newSize = RandomLayout(ref rng).Size;
                checkedBytes += CheckContents(block, block.Size, op, "reallocate");
                byte* moved = (byte*)heap.Reallocate((void*)block.Address, oldLayout, newSize);
                if (moved == null)
                {
                    // The old block must stay live and untouched.
                    checkedBytes += CheckContents(block, block.Size, op, "failed reallocate");
                    failed++;
                }
                else
                {
                    var newLayout = new Layout(newSize, block.Align);
                    CheckPlacement(moved, newLayout, target.BlockAlignment(newLayout), op);
                    var kept = block with { Address = (nint)moved };
                    checkedBytes += CheckContents(kept, Math.Min(block.Size, newSize) & ~(nuint)7, op, "reallocated");
                    allocatedModel = allocatedModel - target.BlockSize(oldLayout) + target.BlockSize(newLayout);
                    userModel = userModel - block.Size + newSize;
                    block.Address = (nint)moved;
                    block.Size = newSize;
                    block.Cookie = rng.Next() | 1;
                    BlockPattern.Fill(moved, newSize, block.Cookie);
                    reallocations++;
                }
            }

            if (op % validateEvery == 0)
            {
                target.Validate();
                validations++;
                CheckAccounting(target, allocatedModel, userModel, count, op);
                progress?.Invoke(op);
            }
        }

        for (int i = 0; i < count; i++)
        {
            checkedBytes += CheckContents(live[i], live[i].Size, operations, "final free");
            heap.Deallocate((void*)live[i].Address, new Layout(live[i].Size, live[i].Align));
            frees++;
        }

        target.Validate();
        validations++;
        CheckAccounting(target, 0, 0, 0, operations);
        if (largestAtStart != 0)
        {
            Layout whole = target.WholeBlock(largestAtStart);
            void* block = heap.Allocate(whole);
            if (block == null)
            {
                throw new SoakFailureException($"{target.Name}: after freeing everything the largest block of the fresh heap ({largestAtStart} bytes) cannot be allocated again: it did not merge back.");
            }

            heap.Deallocate(block, whole);
            target.Validate();
        }

        return new SoakResult(target.Name, operations, allocations, failed, frees, reallocations, validations, peak, checkedBytes, started.Elapsed);
    }

    /// <summary>Sizes spread over 1 B .. 8 KiB on a log scale (every order gets traffic), alignments 1 .. 32.</summary>
    internal static Layout RandomLayout(ref SplitMix64 rng)
    {
        int e = (int)rng.Next(13);
        nuint size = (nuint)((1UL << e) + rng.Next(1UL << e) - 1);
        nuint align = (nuint)1 << (int)rng.Next(6);
        return new Layout(size, align);
    }

    private static void CheckPlacement(byte* block, Layout layout, ulong alignment, long op)
    {
        if ((ulong)block % alignment != 0)
        {
            throw new SoakFailureException($"operation {op}: block {Hex(block)} for {layout} is not aligned to {alignment}, as the engine promises.");
        }
    }

    private static ulong CheckContents(in Live block, nuint size, long op, string when)
    {
        long at = BlockPattern.FirstMismatch((byte*)block.Address, size, block.Cookie);
        if (at >= 0)
        {
            throw new SoakFailureException($"operation {op} ({when}): live block {Hex((void*)block.Address)} of {block.Size} bytes was overwritten at byte {at}.");
        }

        return size;
    }

    private static void CheckAccounting(HeapTarget target, ulong allocated, ulong user, int live, long op)
    {
        HeapStats stats = target.Stats;
        if (stats.AllocatedBytes != allocated || stats.UserBytes != user || stats.LiveBlocks != live)
        {
            throw new SoakFailureException(string.Create(CultureInfo.InvariantCulture,
                $"operation {op}: {target.Name} reports {stats.LiveBlocks} live blocks, {stats.AllocatedBytes} allocated and {stats.UserBytes} user bytes; the model has {live}, {allocated} and {user}."));
        }
    }

    private static string Hex(void* address) => "0x" + ((ulong)address).ToString("x", CultureInfo.InvariantCulture);
}
