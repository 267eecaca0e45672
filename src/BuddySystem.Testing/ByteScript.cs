using System.Globalization;

namespace BuddySystem.Testing;

/// <summary>
/// Decodes arbitrary bytes into a sequence of heap operations and runs it on an engine with every check on: the
/// fuzzing harness (fuzz/BuddySystem.Fuzz) feeds it AFL++'s inputs, and the tests replay the committed corpus and
/// random inputs through it. Any broken promise throws <see cref="SoakFailureException"/> (or lets an unexpected
/// exception escape), which the fuzzer records as a crash; expected misuse exceptions are part of the script.
/// </summary>
/// <remarks>
/// <para>Each operation is one opcode byte followed by its operands; a missing operand byte reads as 0, so every input
/// is a valid script. Opcodes (modulo 10): 0 allocate (size u16, align shift), 1 free (pick), 2 reallocate (pick, size
/// u16), 3 free an address that was freed before (double free or stale address), 4 free an interior pointer (pick,
/// offset), 5 free with the layout of another block size (pick), 6 add a region (size in 16-byte units u16, offset),
/// 7 validate and check the accounting, 8 free an address outside every region, 9 allocate more than the heap holds.</para>
/// <para>Misuse must throw <see cref="ArgumentException"/> or <see cref="InvalidOperationException"/> (never
/// <see cref="HeapCorruptionException"/>) whose message names the address, and leave the heap's stats unchanged.
/// At the end every block is freed, the heap validates with zero allocated bytes, and its first region's largest block
/// can be allocated again.</para>
/// </remarks>
internal static unsafe class ByteScript
{
    /// <summary>The heap every script starts with: small, so scripts reach exhaustion and merging at the top.</summary>
    internal const int HeapBytes = 16 << 10;

    /// <summary>Room for the regions a script adds, carved in order from one arena.</summary>
    internal const int ArenaBytes = 256 << 10;

    /// <summary>Upper bound on operations so that one input stays a few milliseconds.</summary>
    internal const int MaxOperations = 4096;

    private struct Live
    {
        public nint Address;
        public Layout Layout;
        public ulong Cookie;
    }

    /// <summary>Runs <paramref name="script"/> on a fresh instance of each engine; returns the operations decoded.</summary>
    /// <param name="script">The input.</param>
    /// <param name="engines">Builds each engine over <see cref="HeapBytes"/> bytes (<see cref="EngineCatalog.TargetFactories"/>).</param>
    internal static int RunOnAllEngines(ReadOnlySpan<byte> script, IEnumerable<Func<nuint, HeapTarget>> engines)
    {
        int operations = 0;
        foreach (Func<nuint, HeapTarget> engine in engines)
        {
            operations = Run(engine, script);
        }

        return operations;
    }

    /// <summary>Runs <paramref name="script"/> on a fresh engine built by <paramref name="engine"/>; returns the operations decoded.</summary>
    internal static int Run(Func<nuint, HeapTarget> engine, ReadOnlySpan<byte> script)
    {
        // The arena first, so that it is freed after the engine it gives regions to (a ConcurrentHeap trims after full
        // collections on the finalizer thread until it is disposed).
        using var arena = new NativeRegion(ArenaBytes, 4096);
        using HeapTarget target = engine(HeapBytes);
        nuint arenaUsed = 0;
        var live = new List<Live>();
        var freed = new List<nint>();
        var reader = new Reader(script);
        ulong cookieSeed = 0x5EED;
        ulong largestAtStart = target.Stats.LargestFreeBlock;
        IAllocator heap = target.Allocator;
        int op = 0;
        for (; op < MaxOperations && !reader.AtEnd; op++)
        {
            switch (reader.Byte() % 10)
            {
                case 0:
                {
                    var layout = new Layout(reader.UInt16(), (nuint)1 << (reader.Byte() % 12));
                    byte* block = (byte*)heap.Allocate(layout);
                    if (block != null)
                    {
                        Require((ulong)block % target.BlockAlignment(layout) == 0, op, $"block {Hex(block)} for {layout} is not aligned to {target.BlockAlignment(layout)}, as the engine promises");
                        ulong cookie = Cookie(ref cookieSeed);
                        BlockPattern.Fill(block, layout.Size, cookie);
                        live.Add(new Live { Address = (nint)block, Layout = layout, Cookie = cookie });
                        freed.Remove((nint)block);
                    }

                    break;
                }

                case 1:
                {
                    int pick = reader.Byte();
                    if (live.Count != 0)
                    {
                        Live victim = Take(live, pick);
                        CheckIntact(victim, victim.Layout.Size, op);
                        heap.Deallocate((void*)victim.Address, victim.Layout);
                        freed.Add(victim.Address);
                    }

                    break;
                }

                case 2:
                {
                    int pick = reader.Byte();
                    nuint newSize = reader.UInt16();
                    if (live.Count != 0)
                    {
                        int index = pick % live.Count;
                        Live block = live[index];
                        byte* moved = (byte*)heap.Reallocate((void*)block.Address, block.Layout, newSize);
                        if (moved == null)
                        {
                            CheckIntact(block, block.Layout.Size, op);
                        }
                        else
                        {
                            Require((ulong)moved % target.BlockAlignment(new Layout(newSize, block.Layout.Align)) == 0, op, $"reallocated block {Hex(moved)} is misaligned");
                            CheckIntact(block with { Address = (nint)moved }, Math.Min(block.Layout.Size, newSize) & ~(nuint)7, op);
                            if (moved != (byte*)block.Address)
                            {
                                freed.Add(block.Address);
                            }

                            freed.Remove((nint)moved);
                            block.Address = (nint)moved;
                            block.Layout = new Layout(newSize, block.Layout.Align);
                            block.Cookie = Cookie(ref cookieSeed);
                            BlockPattern.Fill(moved, newSize, block.Cookie);
                            live[index] = block;
                        }
                    }

                    break;
                }

                case 3:
                {
                    int pick = reader.Byte();
                    if (freed.Count != 0)
                    {
                        nint stale = freed[pick % freed.Count];
                        if (!live.Exists(b => b.Address == stale))
                        {
                            ExpectMisuse(target, (void*)stale, new Layout(16, 1), op, "double free");
                        }
                    }

                    break;
                }

                case 4:
                {
                    int pick = reader.Byte();
                    int offset = reader.Byte();
                    if (live.Count != 0)
                    {
                        Live block = live[pick % live.Count];
                        ulong size = target.BlockSize(block.Layout);
                        var interior = (void*)(block.Address + (nint)(1 + ((ulong)offset % (size - 1))));
                        ExpectMisuse(target, interior, new Layout(16, 1), op, "interior pointer");
                    }

                    break;
                }

                case 5:
                {
                    int pick = reader.Byte();
                    if (live.Count != 0)
                    {
                        Live block = live[pick % live.Count];
                        // A smaller layout, except on the frame allocator: like the crate, it accepts the count that was
                        // passed to AllocateAligned even when the alignment made the block larger. A larger one never fits.
                        ulong size = target.BlockSize(block.Layout);
                        bool smaller = size > 16 && (pick & 1) == 0 && target.Name != "frame-allocator";
                        var wrong = new Layout((nuint)(smaller ? size / 4 : size * 2), 1);
                        if (target.BlockSize(wrong) == size)
                        {
                            break; // on a hardened heap a quarter of a small block still maps to it
                        }

                        ExpectMisuse(target, (void*)block.Address, wrong, op, "layout of another block size");
                    }

                    break;
                }

                case 6:
                {
                    nuint size = (nuint)reader.UInt16() % 2048 * 16;
                    int offset = reader.Byte() % 16;
                    nuint start = arenaUsed + (nuint)offset;
                    if (target.CanAddRegion && size >= 16 && start + size <= ArenaBytes)
                    {
                        nint regionStart = (nint)((byte*)arena.Pointer + start);
                        if (((start + size) & ~(nuint)15) <= ((start + 15) & ~(nuint)15))
                        {
                            // No whole 16-byte granule: the documented ArgumentException, and the heap unchanged.
                            HeapStats before = target.Stats;
                            Require(Throws<ArgumentException>(() => target.AddRegion(regionStart, size)), op, $"a region at {Hex((void*)regionStart)} of {size} bytes holds no granule but was accepted");
                            Require(target.Stats.TotalBytes == before.TotalBytes, op, "a rejected region changed the heap's size");
                        }
                        else
                        {
                            target.AddRegion(regionStart, size);
                        }

                        arenaUsed = (start + size + 15) & ~(nuint)15;
                    }

                    break;
                }

                case 7:
                    target.Validate();
                    CheckAccounting(target, live, op);
                    break;

                case 8:
                {
                    byte outside = 0;
                    ExpectMisuse(target, &outside, new Layout(1, 1), op, "address outside every region");
                    break;
                }

                default:
                {
                    var tooLarge = new Layout((nuint)(target.Stats.TotalBytes + 1), 1);
                    Require(heap.Allocate(tooLarge) == null, op, $"{tooLarge} is larger than the heap but was served");
                    break;
                }
            }
        }

        target.Validate();
        CheckAccounting(target, live, op);
        foreach (Live block in live)
        {
            CheckIntact(block, block.Layout.Size, op);
            heap.Deallocate((void*)block.Address, block.Layout);
        }

        live.Clear();
        target.Validate();
        CheckAccounting(target, live, op);
        Layout whole = target.WholeBlock(largestAtStart);
        void* again = heap.Allocate(whole);
        Require(again != null, op, $"after freeing everything the first region's {largestAtStart}-byte block cannot be allocated again");
        heap.Deallocate(again, whole);
        return op;
    }

    private static void ExpectMisuse(HeapTarget target, void* address, Layout layout, int op, string what)
    {
        HeapStats before = target.Stats;
        Exception? thrown = null;
        try
        {
            target.Allocator.Deallocate(address, layout);
        }
        catch (HeapCorruptionException)
        {
            throw;
        }
        catch (ArgumentException error)
        {
            thrown = error;
        }
        catch (InvalidOperationException error)
        {
            thrown = error;
        }

        Require(thrown != null, op, $"{what}: freeing {Hex(address)} with {layout} was accepted");
        string named = target.Describe(address);
        Require(thrown!.Message.Contains(named, StringComparison.Ordinal), op, $"{what}: the message does not name {named}: {thrown.Message}");
        HeapStats after = target.Stats;
        Require(before.AllocatedBytes == after.AllocatedBytes && before.LiveBlocks == after.LiveBlocks && before.FreeBytes == after.FreeBytes,
            op, $"{what}: the rejected free of {Hex(address)} changed the heap");
    }

    private static bool Throws<TException>(Action action)
        where TException : Exception
    {
        try
        {
            action();
            return false;
        }
        catch (TException)
        {
            return true;
        }
    }

    private static void CheckAccounting(HeapTarget target, List<Live> live, int op)
    {
        HeapStats stats = target.Stats;
        ulong allocated = 0, user = 0;
        foreach (Live block in live)
        {
            allocated += target.BlockSize(block.Layout);
            user += block.Layout.Size;
        }

        Require(stats.LiveBlocks == live.Count && stats.AllocatedBytes == allocated && stats.UserBytes == user, op,
            string.Create(CultureInfo.InvariantCulture, $"the heap reports {stats.LiveBlocks} live, {stats.AllocatedBytes} allocated, {stats.UserBytes} user bytes; the script holds {live.Count}, {allocated}, {user}"));
    }

    private static void CheckIntact(in Live block, nuint size, int op)
    {
        long at = BlockPattern.FirstMismatch((byte*)block.Address, size, block.Cookie);
        Require(at < 0, op, $"live block {Hex((void*)block.Address)} ({block.Layout}) was overwritten at byte {at}");
    }

    private static Live Take(List<Live> live, int pick)
    {
        int index = pick % live.Count;
        Live taken = live[index];
        live[index] = live[^1];
        live.RemoveAt(live.Count - 1);
        return taken;
    }

    private static ulong Cookie(ref ulong seed)
    {
        var rng = new SplitMix64(seed);
        seed = rng.Next();
        return seed | 1;
    }

    private static void Require(bool condition, int op, string message)
    {
        if (!condition)
        {
            throw new SoakFailureException($"script operation {op}: {message}");
        }
    }

    private static string Hex(void* address) => "0x" + ((ulong)address).ToString("x", CultureInfo.InvariantCulture);

    /// <summary>Reads operands; past the end every read is 0 so that any byte string is a whole script.</summary>
    private ref struct Reader(ReadOnlySpan<byte> bytes)
    {
        private readonly ReadOnlySpan<byte> _bytes = bytes;
        private int _position;

        public readonly bool AtEnd => _position >= _bytes.Length;

        public byte Byte() => _position < _bytes.Length ? _bytes[_position++] : (byte)0;

        public ushort UInt16() => (ushort)(Byte() | (Byte() << 8));
    }
}
