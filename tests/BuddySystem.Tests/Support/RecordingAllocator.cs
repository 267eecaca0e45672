using BuddySystem.Cli.Bench;

namespace BuddySystem.Tests;

/// <summary>
/// A fake arena for the workload tests: hands out fresh fake addresses, fails once live bytes would pass a capacity, and
/// records every call so a test can compare the stream an allocator sees with the one DESIGN.md §5 defines.
/// </summary>
internal readonly struct RecordingAllocator(ulong capacity) : IBenchAllocator
{
    private readonly Log _log = new();

    public static bool IsThreadSafe => false;

    public static bool IsArena => true;

    public nuint RegionStart => 0x1000;

    public List<(char Op, nuint Block, nuint Size)> Calls => _log.Calls;

    public ulong LiveBytes => _log.LiveBytes;

    public nuint Allocate(nuint size, nuint align)
    {
        if (_log.LiveBytes + size > capacity)
        {
            _log.Calls.Add(('x', 0, size));
            return 0;
        }

        _log.Next += 0x100;
        _log.LiveBytes += size;
        _log.Calls.Add(('a', _log.Next, size));
        return _log.Next;
    }

    public void Free(nuint block, nuint size, nuint align)
    {
        _log.LiveBytes -= size;
        _log.Calls.Add(('f', block, size));
    }

    public nuint Reallocate(nuint block, nuint size, nuint align, nuint newSize)
    {
        if (_log.LiveBytes - size + newSize > capacity)
        {
            _log.Calls.Add(('x', block, newSize));
            return 0;
        }

        _log.LiveBytes = _log.LiveBytes - size + newSize;
        _log.Calls.Add(('r', block, newSize));
        return block;
    }

    public nuint BlockSize(nuint block, nuint size, nuint align) => size;

    public void Dispose()
    {
    }

    private sealed class Log
    {
        public List<(char Op, nuint Block, nuint Size)> Calls { get; } = [];

        public nuint Next { get; set; } = 0x1000;

        public ulong LiveBytes { get; set; }
    }
}
