using System.Globalization;
using BuddySystem.Testing;

namespace BuddySystem.Tests.Reliability;

/// <summary>
/// The actual side of the parallel (linearizability) tests: a thread-safe engine and its live blocks. Picking the
/// block to free happens under a small lock (that is the operation's linearization point for the model); the engine
/// call itself runs outside it, so threads really meet inside the engine.
/// </summary>
internal sealed unsafe class SharedHeapUnderTest(string engine, nuint size) : IDisposable
{
    private static int s_undisposed;
    private readonly Lock _liveLock = new();
    private int _disposed;
    private readonly List<(nint Address, Layout Layout, ulong Cookie)> _live = [];

    public HeapTarget Target { get; } = Made(EngineCatalog.CreateTarget(engine, size));

    /// <summary>Instances made and not yet disposed (see <see cref="HeapUnderTest.Undisposed"/>).</summary>
    public static int Undisposed => Volatile.Read(ref s_undisposed);

    public void Allocate(Layout layout, ulong cookie)
    {
        byte* block = (byte*)Target.Allocator.Allocate(layout);
        Assert.True(block != null, $"{Target.Name}: {layout} returned null on a heap far from full");
        BlockPattern.Fill(block, layout.Size, cookie);
        lock (_liveLock)
        {
            _live.Add(((nint)block, layout, cookie));
        }
    }

    public void Free(int pick)
    {
        (nint Address, Layout Layout, ulong Cookie) victim;
        lock (_liveLock)
        {
            if (_live.Count == 0)
            {
                return;
            }

            int index = pick % _live.Count;
            victim = _live[index];
            _live[index] = _live[^1];
            _live.RemoveAt(_live.Count - 1);
        }

        Assert.True(BlockPattern.FirstMismatch((byte*)victim.Address, victim.Layout.Size, victim.Cookie) < 0, $"block 0x{victim.Address:x} was overwritten while live");
        Target.Allocator.Deallocate((void*)victim.Address, victim.Layout);
    }

    /// <summary>The abstract state, compared with the model: validates, then live blocks and bytes (never addresses).</summary>
    public bool Matches(HeapModel model)
    {
        Target.Validate();
        HeapStats stats = Target.Stats;
        return stats.LiveBlocks == model.Blocks.Count && stats.AllocatedBytes == model.AllocatedBytes && stats.UserBytes == model.UserBytes
            && stats.FreeBytes == stats.TotalBytes - stats.AllocatedBytes;
    }

    public override string ToString()
    {
        HeapStats stats = Target.Stats;
        return string.Create(CultureInfo.InvariantCulture, $"{Target.Name}: {stats.LiveBlocks} live, {stats.AllocatedBytes} allocated, {stats.UserBytes} user");
    }

    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) == 0)
        {
            Interlocked.Decrement(ref s_undisposed);
            Target.Dispose();
        }
    }

    private static HeapTarget Made(HeapTarget target)
    {
        Interlocked.Increment(ref s_undisposed);
        return target;
    }
}
