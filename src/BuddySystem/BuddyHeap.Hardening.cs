using System.Diagnostics;
using System.Text;

namespace BuddySystem;

// Hardened mode (HeapHardeningOptions): the checks live here; the engine's core paths call in through small hooks, each
// marked "hardening hook" and guarded by one `_hardening != null` test, so an unhardened heap pays one predictable branch.
//
// Invariants kept while hardened (with CheckWriteAfterFree):
// - every free block, in a buddy list or a cache, holds the poison byte everywhere except its first 16 bytes (the links);
// - a merge re-poisons the first 16 bytes of the upper half, whose links would otherwise stay inside the merged block;
// - new regions are poisoned when added.
// So a block handed out again must hold poison from byte 16 to its end; anything else was written after it was freed.
// With CheckOverflow each block is laid out as [requested bytes][canary bytes up to the footer][8-byte footer], the footer
// holding the requested size xor a per-heap cookie; a free checks both.
public sealed unsafe partial class BuddyHeap
{
    /// <summary>Bytes a hardened heap with overflow checks adds to every request: at least 8 of canary, 8 of footer.</summary>
    internal const int HardeningOverhead = 16;

    /// <summary>The first bytes of a free block hold its links and are not poisoned.</summary>
    private const int LinkBytes = 16;

    private readonly HardeningState? _hardening;

    /// <summary>Whether this heap runs the checks of <see cref="BuddyHeapOptions.Hardening"/>.</summary>
    public bool IsHardened => _hardening != null;

    /// <summary>Allocates with poison and canary checks; called by <see cref="Allocate"/> when hardened.</summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    private void* HardenedAllocate(Layout layout)
    {
        HardeningState hardening = _hardening!;
        ThrowIfDisposed();
        if (!hardening.TryInner(layout, out Layout inner))
        {
            _failedAllocations++;
            return null;
        }

        int order = Orders.OrderFor(inner.Size, inner.Align, MinShift);
        byte* block = (byte*)AllocateSlow(inner, order);
        if (block == null)
        {
            return null;
        }

        _userBytes -= inner.Size - layout.Size;
        ulong blockSize = (ulong)MinBlockSize << order;
        if (hardening.Options.CheckWriteAfterFree)
        {
            CheckPoison(hardening, block, blockSize);
        }

        if (hardening.Options.CheckOverflow)
        {
            WriteCanary(hardening, block, layout.Size, blockSize);
        }

        hardening.Stacks?.Add((ulong)block, new StackTrace(1, fNeedFileInfo: false));
        return block;
    }

    /// <summary>Frees with canary checks and poisons the block; called by <see cref="Deallocate"/> when hardened.</summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    private void HardenedDeallocate(void* ptr, Layout layout)
    {
        HardeningState hardening = _hardening!;
        ThrowIfDisposed();
        int order = CheckHardenedLiveBlock(hardening, ptr, layout, out int index);
        ulong blockSize = (ulong)MinBlockSize << order;
        if (hardening.Options.CheckOverflow)
        {
            CheckCanary(hardening, (byte*)ptr, blockSize);
        }

        hardening.Stacks?.Remove((ulong)ptr);
        if (hardening.Options.CheckWriteAfterFree)
        {
            new Span<byte>(ptr, (int)Math.Min(blockSize, int.MaxValue)).Fill(hardening.Options.PoisonByte);
            PoisonBeyondSpan((byte*)ptr, blockSize, hardening.Options.PoisonByte);
        }

        ref Region region = ref _regions[index];
        _lastRegion = index;
        ulong address = (ulong)ptr;
        Release(address, order, region.States + ((address - region.Start) >> MinShift), layout.Size, ref region);
    }

    /// <summary>Resizes with the checks of both; called by <see cref="Reallocate"/> when hardened.</summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    private void* HardenedReallocate(void* ptr, Layout layout, nuint newSize)
    {
        HardeningState hardening = _hardening!;
        ThrowIfDisposed();
        var newLayout = new Layout(newSize, layout.Align);
        int order = CheckHardenedLiveBlock(hardening, ptr, layout, out _);
        ulong blockSize = (ulong)MinBlockSize << order;
        if (hardening.TryInner(newLayout, out Layout newInner) && Orders.OrderFor(newInner.Size, newInner.Align, MinShift) == order)
        {
            if (hardening.Options.CheckOverflow)
            {
                CheckCanary(hardening, (byte*)ptr, blockSize);
                WriteCanary(hardening, (byte*)ptr, newSize, blockSize);
            }

            _userBytes = _userBytes - Math.Min(_userBytes, layout.Size) + newSize;
            return ptr;
        }

        return Moves.AllocateCopyFree(this, ptr, layout, newSize);
    }

    /// <summary>
    /// The misuse checks of <see cref="CheckLiveBlock"/> on the layout the block was really allocated with (request plus
    /// the hardening overhead), with messages that name the caller's layout.
    /// </summary>
    private int CheckHardenedLiveBlock(HardeningState hardening, void* ptr, Layout layout, out int index)
    {
        if (!hardening.TryInner(layout, out Layout inner))
        {
            inner = layout; // cannot be a block of this heap; CheckLiveBlock says why
        }

        try
        {
            return CheckLiveBlock(ptr, inner, out index);
        }
        catch (ArgumentException error) when (error.ParamName == nameof(layout) && inner != layout)
        {
            throw new ArgumentException(
                error.Message.Replace(inner.ToString(), $"{layout} (+{inner.Size - layout.Size} bytes of hardening)", StringComparison.Ordinal),
                nameof(layout));
        }
    }

    /// <summary>Hardening hook of <see cref="FreeAndMerge"/>: the upper half's links end up inside the merged block.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private void PoisonMergedLinks(ulong upperHalf)
    {
        HeapHardeningOptions options = _hardening!.Options;
        if (options.CheckWriteAfterFree)
        {
            new Span<byte>((void*)upperHalf, LinkBytes).Fill(options.PoisonByte);
        }
    }

    /// <summary>Hardening hook of <see cref="AddRegion(void*, nuint)"/>: poison every block of the new region past its links.</summary>
    private void PoisonNewRegion(ulong first)
    {
        HeapHardeningOptions options = _hardening!.Options;
        if (!options.CheckWriteAfterFree)
        {
            return;
        }

        ref Region region = ref _regions[FindRegion(first)];
        for (ulong address = region.Start; address < region.End;)
        {
            ulong size = (ulong)MinBlockSize << OrderOfState(region.States[(address - region.Start) >> MinShift]);
            PoisonBeyondSpan((byte*)address + LinkBytes, size - LinkBytes, options.PoisonByte, fromStart: true);
            address += size;
        }
    }

    /// <summary>Hardening hook of <see cref="Dispose"/>: report the blocks still live, with their stacks when captured.</summary>
    private void ReportLeaks()
    {
        HardeningState hardening = _hardening!;
        if (!hardening.Options.ReportLeaksOnDispose || _liveBlocks == 0)
        {
            return;
        }

        var report = new StringBuilder();
        report.Append(CultureInfo.InvariantCulture, $"BuddySystem: {_liveBlocks} blocks ({_allocatedBytes} bytes) still live when the heap was disposed:");
        foreach (Region region in _regions)
        {
            for (ulong address = region.Start; address < region.End;)
            {
                byte state = region.States[(address - region.Start) >> MinShift];
                ulong size = (ulong)MinBlockSize << OrderOfState(state);
                if ((state & StateAllocated) != 0)
                {
                    report.AppendLine().Append(CultureInfo.InvariantCulture, $"  {ThrowHelper.Hex(address)}: block of {size} bytes");
                    if (hardening.Options.CheckOverflow && hardening.TryReadFooter((byte*)address, size, out ulong requested))
                    {
                        report.Append(CultureInfo.InvariantCulture, $", {requested} bytes requested");
                    }

                    if (hardening.Stacks != null && hardening.Stacks.TryGetValue(address, out StackTrace? stack))
                    {
                        report.AppendLine(", allocated").Append(stack.ToString().TrimEnd());
                    }
                }

                address += size;
            }
        }

        hardening.Options.LeakHandler(report.ToString());
    }

    private static void CheckPoison(HardeningState hardening, byte* block, ulong blockSize)
    {
        byte poison = hardening.Options.PoisonByte;
        for (ulong offset = LinkBytes; offset < blockSize;)
        {
            int length = (int)Math.Min(blockSize - offset, 1 << 30);
            int found = new ReadOnlySpan<byte>(block + offset, length).IndexOfAnyExcept(poison);
            if (found >= 0)
            {
                ulong at = offset + (ulong)found;
                hardening.Options.CorruptionHandler(HeapCorruptionException.Prefix + string.Create(CultureInfo.InvariantCulture,
                    $"write after free: block {ThrowHelper.Hex((ulong)block)} of {blockSize} bytes holds 0x{block[at]:x2} at offset {at} (address {ThrowHelper.Hex((ulong)block + at)}) instead of the poison 0x{poison:x2}: it was written after it was freed."));
                return;
            }

            offset += (ulong)length;
        }
    }

    private static void WriteCanary(HardeningState hardening, byte* block, nuint size, ulong blockSize)
    {
        ulong footer = blockSize - 8;
        for (ulong i = size; i < footer; i++)
        {
            block[i] = hardening.CanaryByte(i);
        }

        *(ulong*)(block + footer) = (ulong)size ^ hardening.Cookie;
    }

    private static void CheckCanary(HardeningState hardening, byte* block, ulong blockSize)
    {
        if (!hardening.TryReadFooter(block, blockSize, out ulong size))
        {
            hardening.Options.CorruptionHandler(HeapCorruptionException.Prefix + string.Create(CultureInfo.InvariantCulture,
                $"overflow: the footer of block {ThrowHelper.Hex((ulong)block)} ({blockSize} bytes) at {ThrowHelper.Hex((ulong)block + blockSize - 8)} was overwritten: something wrote past the requested bytes."));
            return;
        }

        for (ulong i = size; i < blockSize - 8; i++)
        {
            if (block[i] != hardening.CanaryByte(i))
            {
                hardening.Options.CorruptionHandler(HeapCorruptionException.Prefix + string.Create(CultureInfo.InvariantCulture,
                    $"overflow: block {ThrowHelper.Hex((ulong)block)} of {size} requested bytes was written {i - size + 1} bytes past its end (canary at {ThrowHelper.Hex((ulong)block + i)} holds 0x{block[i]:x2})."));
                return;
            }
        }
    }

    /// <summary>Fills what a span of int length could not (blocks of 2 GiB and more).</summary>
    private static void PoisonBeyondSpan(byte* start, ulong length, byte poison, bool fromStart = false)
    {
        ulong done = fromStart ? 0 : Math.Min(length, int.MaxValue);
        while (done < length)
        {
            int chunk = (int)Math.Min(length - done, 1 << 30);
            new Span<byte>(start + done, chunk).Fill(poison);
            done += (ulong)chunk;
        }
    }

    /// <summary>The options of a hardened heap with what they need at run time.</summary>
    private sealed class HardeningState
    {
        private HardeningState(HeapHardeningOptions options)
        {
            Options = options;
            Cookie = (ulong)Random.Shared.NextInt64() | 1;
            Stacks = options.CaptureAllocationStacks ? [] : null;
        }

        public HeapHardeningOptions Options { get; }

        /// <summary>Xor-ed into footers and canaries so that stray data does not pass for them.</summary>
        public ulong Cookie { get; }

        /// <summary>The stack of each live block, when captured.</summary>
        public Dictionary<ulong, StackTrace>? Stacks { get; }

        public static HardeningState? For(BuddyHeapOptions options) => options.Hardening is { } hardening ? new HardeningState(hardening) : null;

        /// <summary>The layout the engine allocates for a request: 16 bytes more when overflows are checked.</summary>
        public bool TryInner(Layout layout, out Layout inner)
        {
            if (!Options.CheckOverflow)
            {
                inner = layout;
                return true;
            }

            if (layout.Size > nuint.MaxValue - HardeningOverhead - (layout.Align - 1))
            {
                inner = default;
                return false;
            }

            inner = new Layout(layout.Size + HardeningOverhead, layout.Align);
            return true;
        }

        public byte CanaryByte(ulong offset) => (byte)(Cookie >> (int)(offset % 8 * 8));

        public bool TryReadFooter(byte* block, ulong blockSize, out ulong size)
        {
            size = *(ulong*)(block + blockSize - 8) ^ Cookie;
            return size <= blockSize - HardeningOverhead;
        }
    }
}
