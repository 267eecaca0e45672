using BuddySystem.Internals;

namespace BuddySystem.Tests.Engines;

/// <summary>SharedHeap in one process: allocation, the misuse matrix, bad files, reopening, and recovery of an
/// interrupted operation (the intent record written by hand, as a killed process leaves it).</summary>
public sealed unsafe class SharedHeapTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("shm-").FullName;

    public void Dispose() => Directory.Delete(_dir, true);

    private string PathOf(string name) => Path.Combine(_dir, name);

    [Fact]
    public void AllocateFree_RoundTrip_ValidatesAndReuses()
    {
        using var heap = SharedHeap.Create(PathOf("h"), 1 << 20);
        ulong a = heap.Allocate(100);
        ulong b = heap.Allocate(16);
        Assert.NotEqual(0UL, a);
        Assert.Equal(0UL, (a - heap.DataOffset) % 128);
        Assert.Equal(128UL, heap.SizeOf(a));
        heap.Pointer(a)[99] = 7;
        heap.Validate();
        Assert.Equal(2, heap.Stats.LiveBlocks);
        heap.Free(a);
        heap.Free(b);
        heap.Validate();
        Assert.Equal(1UL << 20, heap.Stats.LargestFreeBlock);
        Assert.False(heap.TryAllocate(2 << 20, 16, out _));
        Assert.Throws<HeapExhaustedException>(() => heap.Allocate(2 << 20));
    }

    [Fact]
    public void Open_SecondMapping_SeesTheSameBlocksAndSlots()
    {
        using var first = SharedHeap.Create(PathOf("h"), 1 << 16);
        ulong block = first.AllocateInto(40, 8, first.RootOffset + 8);
        *(long*)first.Pointer(block) = 42;
        using var second = SharedHeap.Open(PathOf("h"));
        Assert.Equal(block, *(ulong*)second.Pointer(second.RootOffset + 8));
        Assert.Equal(42, *(long*)second.Pointer(block));
        second.FreeFrom(second.RootOffset + 8);
        Assert.Equal(0UL, *(ulong*)first.Pointer(first.RootOffset + 8));
        Assert.Equal(0, first.Stats.LiveBlocks);
        first.Validate();
    }

    [Fact]
    public void Free_Misuse_ThrowsNamingTheOffsetAndChangesNothing()
    {
        using var heap = SharedHeap.Create(PathOf("h"), 1 << 16);
        ulong a = heap.Allocate(64);
        ulong freed = heap.Allocate(64);
        heap.Free(freed);
        ulong[] bad = [0, 8, heap.DataOffset + (1 << 16), a + 16, a + 3, freed, heap.DataOffset + 4096];
        foreach (ulong offset in bad)
        {
            var e = Assert.Throws<ArgumentException>(() => heap.Free(offset));
            Assert.Contains(offset.ToString(System.Globalization.CultureInfo.InvariantCulture), e.Message, StringComparison.Ordinal);
        }

        Assert.Contains("inside the allocated block", Assert.Throws<ArgumentException>(() => heap.Free(a + 16)).Message, StringComparison.Ordinal);
        Assert.Throws<ArgumentException>(() => heap.FreeFrom(heap.RootOffset));                 // holds 0
        Assert.Throws<ArgumentException>(() => heap.FreeFrom(heap.RootOffset + 4));             // not 8-aligned
        Assert.Throws<ArgumentException>(() => heap.AllocateInto(16, 16, freed));               // slot in a free block
        Assert.Throws<ArgumentException>(() => heap.Allocate(16, 3));
        Assert.Throws<ArgumentException>(() => heap.Allocate(16, 8192));
        Assert.Equal(1, heap.Stats.LiveBlocks);
        heap.Validate();
        heap.Free(a);
        heap.Validate();
    }

    [Fact]
    public void Create_ExistingFile_Throws()
    {
        File.WriteAllText(PathOf("x"), "hello");
        var e = Assert.Throws<IOException>(() => SharedHeap.Create(PathOf("x"), 1 << 16));
        Assert.Contains(PathOf("x"), e.Message, StringComparison.Ordinal);
        Assert.Equal("hello", File.ReadAllText(PathOf("x")));
    }

    [Fact]
    public void Open_BadFiles_ThrowNamingTheFileAndWriteNothing()
    {
        string path = PathOf("h");
        SharedHeap.Create(path, 1 << 16).Dispose();
        byte[] good = File.ReadAllBytes(path);

        void Expect(string name, byte[] content, string words)
        {
            string file = PathOf(name);
            File.WriteAllBytes(file, content);
            var e = Assert.Throws<InvalidDataException>(() => SharedHeap.Open(file));
            Assert.Contains(file, e.Message, StringComparison.Ordinal);
            Assert.Contains(words, e.Message, StringComparison.Ordinal);
            Assert.Equal(content, File.ReadAllBytes(file));
        }

        Expect("text", "not a heap at all, just text"u8.ToArray(), "not a shared heap");
        Expect("short", good[..100], "truncated");
        Expect("cut", good[..(good.Length - 4096)], "truncated");
        byte[] version = (byte[])good.Clone();
        version[8] = 9;
        Expect("version", version, "version 9");
        byte[] corrupt = (byte[])good.Clone();
        corrupt[30] ^= 1;
        Expect("corrupt", corrupt, "corrupted");
        Assert.Throws<FileNotFoundException>(() => SharedHeap.Open(PathOf("missing")));
    }

    [Theory]
    [InlineData(1UL, true)]   // Allocate interrupted after the state byte: rolled back
    [InlineData(2UL, true)]   // AllocateInto: rolled back, the slot gets its old value
    [InlineData(3UL, false)]  // Free: rolled forward
    [InlineData(4UL, false)]  // FreeFrom: rolled forward, the slot is zeroed
    public void Open_InterruptedOperation_RecoversExactly(ulong op, bool allocating)
    {
        string path = PathOf("h");
        ulong slot;
        ulong offset;
        using (var heap = SharedHeap.Create(path, 1 << 16))
        {
            slot = heap.RootOffset + 16;
            heap.Allocate(32); // a bystander block that must survive
            if (allocating)
            {
                // What a process killed right after marking the block allocated leaves behind: the intent, the state byte
                // and a stale tree path (the tree is not touched at all here).
                offset = heap.Allocate(64);
                heap.Free(offset);
                var header = (SharedHeapHeader*)heap.Pointer(0);
                header->IntentOffset = offset; header->IntentOrder = 2; header->IntentSlot = op == 2 ? slot : 0; header->IntentOldSlot = 0;
                header->IntentOldAllocatedBytes = header->AllocatedBytes; header->IntentOldLiveBlocks = header->LiveBlocks;
                header->IntentOp = op;
                heap.Pointer(header->StatesOffset)[(offset - heap.DataOffset) >> 4] = 3;
                if (op == 2)
                {
                    *(ulong*)heap.Pointer(slot) = offset;
                }
            }
            else
            {
                offset = op == 4 ? heap.AllocateInto(64, 16, slot) : heap.Allocate(64);
                var header = (SharedHeapHeader*)heap.Pointer(0);
                header->IntentOffset = offset; header->IntentOrder = 2; header->IntentSlot = op == 4 ? slot : 0; header->IntentOldSlot = offset;
                header->IntentOldAllocatedBytes = header->AllocatedBytes; header->IntentOldLiveBlocks = header->LiveBlocks;
                header->IntentOp = op; // killed right after publishing the intent, before touching anything else
            }
        }

        using var reopened = SharedHeap.Open(path);
        reopened.Validate();
        Assert.Equal(1, reopened.Recoveries);
        Assert.Equal(1, reopened.Stats.LiveBlocks);
        Assert.Equal(0UL, *(ulong*)reopened.Pointer(slot));
        Assert.Throws<ArgumentException>(() => reopened.Free(offset));
    }
}
