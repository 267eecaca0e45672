using System.Numerics;
using BuddySystem.Cli.Maps;

namespace BuddySystem.Cli.Commands;

/// <summary>
/// The sizes a command's <c>--heap</c> takes. Each range is stated here once; the option's help, its parse error, the
/// commands' own checks and the README's table all say what <see cref="Rule"/> says (a test holds the README to it).
/// </summary>
/// <param name="Min">The smallest size.</param>
/// <param name="Max">The largest size.</param>
/// <param name="PowerOfTwo">Whether the size must be a power of two.</param>
internal sealed record HeapRange(ulong Min, ulong Max, bool PowerOfTwo)
{
    /// <summary><c>map</c>, <c>explore</c> and <c>replay</c>: one range, so that a size that draws a trace also replays it.
    /// A power of two, as replay's arenas are; up to 1 GiB, what a picture or a page can show and the largest arena
    /// replay picks by itself.</summary>
    public static HeapRange Trace { get; } = new(4UL << 10, 1UL << 30, PowerOfTwo: true);

    /// <summary><c>map</c> and <c>explore</c> with <c>-a buddy-tree</c>: the tree view draws at most
    /// <see cref="TreeRecording.MaxLeaves"/> leaves of 16 bytes.</summary>
    public static HeapRange Tree { get; } = new(4UL << 10, (ulong)TreeRecording.MaxLeaves * 16, PowerOfTwo: true);

    /// <summary><c>soak</c> and <c>stress</c>: any size from a page to 1 TiB (the address space is far larger, but a bigger
    /// request is a typo, not a test).</summary>
    public static HeapRange Engine { get; } = new(4UL << 10, 1UL << 40, PowerOfTwo: false);

    /// <summary><c>shm soak</c>: a shared heap file holds its header, state table and slot table before its blocks.</summary>
    public static HeapRange Shared { get; } = new(1UL << 20, 1UL << 40, PowerOfTwo: false);

    /// <summary><c>BUDDY_MALLOC_LIMIT</c> of libbuddymalloc.so (<see cref="MallocEnvironment"/>): 0 or a few bytes would
    /// leave the heap nothing to grow into, and the library does not say so.</summary>
    public static HeapRange MallocLimit { get; } = new(1UL << 20, 1UL << 40, PowerOfTwo: false);

    private static readonly string[] s_examples = ["4096", "64KiB", "1MiB", "32MiB", "1GiB"];

    /// <summary>"a power of two from 4 KiB to 1 GiB".</summary>
    public string Rule => $"{(PowerOfTwo ? "a power of two " : string.Empty)}from {ByteSize.Long(Min)} to {ByteSize.Long(Max)}";

    /// <summary>"e.g. 4096, 64KiB or 1MiB": sizes inside the range, written as the command line takes them.</summary>
    public string Examples
    {
        get
        {
            string[] inside = [.. s_examples.Where(e => ByteSize.TryParse(e, out ByteSize size) && Contains(size.Bytes))];
            return inside.Length switch
            {
                0 => $"e.g. {ByteSize.Long(Min)}",
                1 => $"e.g. {inside[0]}",
                _ => $"e.g. {string.Join(", ", inside[..^1])} or {inside[^1]}",
            };
        }
    }

    /// <summary>Whether <paramref name="bytes"/> is in the range.</summary>
    public bool Contains(ulong bytes) => bytes >= Min && bytes <= Max && (!PowerOfTwo || BitOperations.IsPow2(bytes));

    /// <summary>The line for a size outside the range: "--heap '3KiB' must be a power of two from 4 KiB to 1 GiB, e.g. ...".</summary>
    /// <param name="text">The size as given.</param>
    /// <param name="context">Why this range, when not the command's own (e.g. <c>with -a buddy-tree</c>), or null.</param>
    public string Refusal(string text, string? context = null)
        => $"--heap '{text}' {(context is null ? string.Empty : context + " ")}must be {Rule}, {Examples}.";

    /// <summary>Throws <see cref="BadInputException"/> with <see cref="Refusal"/> when <paramref name="bytes"/> is outside.</summary>
    public void Check(ulong bytes, string? context = null)
    {
        if (!Contains(bytes))
        {
            throw new BadInputException(Refusal(ByteSize.Long(bytes), context));
        }
    }
}
