using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using BuddySystem.Cli.Bench;
using BuddySystem.Cli.Traces;

namespace BuddySystem.Cli.Replay;

/// <summary>
/// Replays a <see cref="CompiledTrace"/> on a struct adapter: a timed pass (allocator calls only) and a verified pass that
/// fills every block with a pattern derived from its id and checks it on free and reallocate.
/// </summary>
/// <remarks>
/// A failed allocation leaves its slot empty: the free of that id is skipped, and a reallocate of it allocates (as
/// <c>realloc(NULL, n)</c> does). A failed reallocate keeps the old block and its old size. Blocks still live at the end
/// are freed after the clock stops.
/// </remarks>
internal static unsafe class TraceReplayer
{
    /// <summary>Replays with nothing but allocator calls in the timed loop.</summary>
    public static ReplayPass RunTimed<T>(ref T allocator, CompiledTrace trace)
        where T : struct, IBenchAllocator
    {
        var blocks = new nuint[trace.Slots];
        var sizes = new nuint[trace.Slots];
        TraceStep[] steps = trace.Steps;
        long failed = 0;
        long start = Stopwatch.GetTimestamp();
        for (int i = 0; i < steps.Length; i++)
        {
            failed += Apply(ref allocator, in steps[i], blocks, sizes) ? 0 : 1;
        }

        long elapsed = Stopwatch.GetTimestamp() - start;
        FreeRemaining(ref allocator, trace, blocks, sizes);
        return new ReplayPass(steps.Length, elapsed, failed, 0, 0, 0, Verified: false);
    }

    /// <summary>Replays filling and checking every block; throws <see cref="ReplayVerificationException"/> on a mismatch.</summary>
    public static ReplayPass RunVerified<T>(ref T allocator, CompiledTrace trace, Action<long>? progress)
        where T : struct, IBenchAllocator
    {
        var blocks = new nuint[trace.Slots];
        var sizes = new nuint[trace.Slots];
        var blockSizes = new nuint[trace.Slots];
        TraceStep[] steps = trace.Steps;
        nuint regionStart = allocator.RegionStart;
        bool blockSizeKnown = true;
        long failed = 0;
        ulong userBytes = 0, allocatedBytes = 0, peakUser = 0, peakAllocated = 0;
        nuint highest = regionStart;
        long start = Stopwatch.GetTimestamp();
        for (int i = 0; i < steps.Length; i++)
        {
            ref readonly TraceStep step = ref steps[i];
            int slot = step.Slot;
            nuint old = blocks[slot];
            nuint oldSize = sizes[slot];
            if (step.Kind != TraceOpKind.Allocate && old != 0)
            {
                Check(trace, step, old, oldSize);
                userBytes -= oldSize;
                allocatedBytes -= blockSizes[slot];
            }

            if (!Apply(ref allocator, in step, blocks, sizes))
            {
                failed++;
                if (old != 0)
                {
                    // A failed reallocate: the old block stays live with its old size and pattern.
                    userBytes += oldSize;
                    allocatedBytes += blockSizes[slot];
                }

                continue;
            }

            nuint block = blocks[slot];
            if (step.Kind == TraceOpKind.Free)
            {
                continue;
            }

            if (old != 0)
            {
                CheckPrefix(trace, step, block, Math.Min(oldSize, step.Size));
            }

            nuint blockSize = allocator.BlockSize(block, step.Size, step.Align);
            blockSizeKnown &= blockSize != 0;
            Fill(block, step.Size, Pattern(step.Id));
            blockSizes[slot] = blockSize;
            userBytes += step.Size;
            allocatedBytes += blockSize;
            peakUser = Math.Max(peakUser, userBytes);
            peakAllocated = Math.Max(peakAllocated, allocatedBytes);
            highest = Math.Max(highest, block + Math.Max(blockSize, step.Size));
            if ((i & 0xFFFF) == 0)
            {
                progress?.Invoke(i);
            }
        }

        long elapsed = Stopwatch.GetTimestamp() - start;
        progress?.Invoke(steps.Length);
        for (int slot = 0; slot < blocks.Length; slot++)
        {
            if (blocks[slot] != 0)
            {
                Check(trace, new TraceStep(TraceOpKind.Free, slot, 0, 0, 0, 0), blocks[slot], sizes[slot], atEnd: true);
            }
        }

        FreeRemaining(ref allocator, trace, blocks, sizes);
        return new ReplayPass(
            steps.Length,
            elapsed,
            failed,
            peakUser,
            blockSizeKnown ? peakAllocated : 0,
            regionStart == 0 ? 0 : highest - regionStart,
            Verified: true);
    }

    /// <summary>
    /// The one rule of a replay step, shared by the timed and verified passes and by <see cref="TraceCursor"/> (map,
    /// explore): an allocate puts its block (or none, when the allocator returns null) in the step's slot; a free frees
    /// the slot's block, if any; a reallocate of an empty slot allocates (<c>realloc(NULL, n)</c>), of a full one
    /// reallocates, and on failure keeps the old block and size.
    /// </summary>
    /// <returns>False when the allocator returned null (a failed allocate or reallocate).</returns>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static bool Apply<T>(ref T allocator, in TraceStep step, nuint[] blocks, nuint[] sizes)
        where T : struct, IBenchAllocator
    {
        int slot = step.Slot;
        nuint old = blocks[slot];
        switch (step.Kind)
        {
            case TraceOpKind.Allocate:
            {
                nuint block = Allocate(ref allocator, step.Size, step.Align);
                blocks[slot] = block;
                sizes[slot] = step.Size;
                return block != 0;
            }

            case TraceOpKind.Free:
                if (old != 0)
                {
                    allocator.Free(old, sizes[slot], step.Align);
                    blocks[slot] = 0;
                }

                return true;

            default:
            {
                nuint moved = old == 0 ? Allocate(ref allocator, step.Size, step.Align) : Reallocate(ref allocator, old, sizes[slot], step.Align, step.Size);
                if (moved == 0)
                {
                    return false;
                }

                blocks[slot] = moved;
                sizes[slot] = step.Size;
                return true;
            }
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static nuint Allocate<T>(ref T allocator, nuint size, nuint align)
        where T : struct, IBenchAllocator => allocator.Allocate(size, align);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static nuint Reallocate<T>(ref T allocator, nuint block, nuint size, nuint align, nuint newSize)
        where T : struct, IBenchAllocator => allocator.Reallocate(block, size, align, newSize);

    /// <summary>The 8-byte fill pattern of block <paramref name="id"/>: the SplitMix64 finaliser of the id, never zero.</summary>
    internal static ulong Pattern(ulong id)
    {
        unchecked
        {
            ulong z = id + 0x9E3779B97F4A7C15;
            z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9;
            z = (z ^ (z >> 27)) * 0x94D049BB133111EB;
            return (z ^ (z >> 31)) | 1;
        }
    }

    private static void FreeRemaining<T>(ref T allocator, CompiledTrace trace, nuint[] blocks, nuint[] sizes)
        where T : struct, IBenchAllocator
    {
        // The alignment of a slot's last block: look it up from the trace only for the few blocks left live.
        if (!blocks.AsSpan().ContainsAnyExcept((nuint)0))
        {
            return;
        }

        var aligns = new nuint[blocks.Length];
        foreach (TraceStep step in trace.Steps)
        {
            aligns[step.Slot] = step.Align;
        }

        for (int slot = 0; slot < blocks.Length; slot++)
        {
            if (blocks[slot] != 0)
            {
                allocator.Free(blocks[slot], sizes[slot], aligns[slot]);
                blocks[slot] = 0;
            }
        }
    }

    private static void Fill(nuint block, nuint size, ulong pattern)
    {
        for (nuint done = 0; done < size;)
        {
            // Chunks of a multiple of 8 bytes keep the pattern's phase from one chunk to the next.
            int chunk = (int)Math.Min(size - done, 1u << 30);
            var bytes = new Span<byte>((byte*)block + done, chunk);
            MemoryMarshal.Cast<byte, ulong>(bytes).Fill(pattern);
            for (int i = chunk & ~7; i < chunk; i++)
            {
                bytes[i] = (byte)(pattern >> ((i & 7) * 8));
            }

            done += (nuint)chunk;
        }
    }

    /// <summary>The offset of the first byte that differs from the pattern, or -1.</summary>
    private static long FirstMismatch(nuint block, nuint size, ulong pattern)
    {
        for (nuint done = 0; done < size;)
        {
            int chunk = (int)Math.Min(size - done, 1u << 30);
            var bytes = new ReadOnlySpan<byte>((byte*)block + done, chunk);
            int word = MemoryMarshal.Cast<byte, ulong>(bytes).IndexOfAnyExcept(pattern);
            int from = word >= 0 ? word * 8 : chunk & ~7;
            for (int i = from; i < chunk; i++)
            {
                if (bytes[i] != (byte)(pattern >> ((i & 7) * 8)))
                {
                    return (long)done + i;
                }
            }

            done += (nuint)chunk;
        }

        return -1;
    }

    private static void Check(CompiledTrace trace, in TraceStep step, nuint block, nuint size, bool atEnd = false)
    {
        ulong id = atEnd ? IdOf(trace, step.Slot) : step.Id;
        long offset = FirstMismatch(block, size, Pattern(id));
        if (offset >= 0)
        {
            string when = atEnd ? "at the end of the trace" : $"at line {step.Line}";
            throw new ReplayVerificationException(
                $"{trace.Source}: block id {id} ({size} bytes at 0x{block:x}) changed at byte {offset} while live, found {when}: another live block overlaps it.");
        }
    }

    private static void CheckPrefix(CompiledTrace trace, in TraceStep step, nuint block, nuint kept)
    {
        long offset = FirstMismatch(block, kept, Pattern(step.Id));
        if (offset >= 0)
        {
            throw new ReplayVerificationException(
                $"{trace.Source}:{step.Line}: reallocate of id {step.Id} lost its contents: byte {offset} of the first {kept} differs at the new address 0x{block:x}.");
        }
    }

    private static ulong IdOf(CompiledTrace trace, int slot)
    {
        for (int i = trace.Steps.Length - 1; i >= 0; i--)
        {
            if (trace.Steps[i].Slot == slot)
            {
                return trace.Steps[i].Id;
            }
        }

        return 0;
    }
}
