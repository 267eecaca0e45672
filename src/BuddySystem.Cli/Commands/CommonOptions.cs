using System.CommandLine.Parsing;
using System.Numerics;

namespace BuddySystem.Cli.Commands;

/// <summary>
/// The one grammar of the <c>buddy</c> commands: every option that more than one command takes is built here, with its
/// validation, so that a heap size is always <c>--heap SIZE</c> with units, an engine always <c>-a/--allocator NAME</c>
/// (repeatable where a command runs several), and a bad value is a parse error that names the valid ones (exit 2).
/// </summary>
internal static class CommonOptions
{
    /// <summary>The largest heap a command reserves: the address space of a 64-bit process is far larger, but a bigger
    /// request is a typo, not a test.</summary>
    public const ulong MaxHeapBytes = 1UL << 40;

    /// <summary><c>--heap SIZE</c> with a default: <c>4096</c>, <c>64KiB</c>, <c>32MiB</c>, <c>1GiB</c>.</summary>
    /// <param name="description">What the heap is, for <c>--help</c>; the units and bounds are appended.</param>
    /// <param name="defaultSize">The size when the option is absent.</param>
    /// <param name="min">The smallest size the command accepts.</param>
    /// <param name="max">The largest size the command accepts.</param>
    /// <param name="powerOfTwo">Whether the size must be a power of two.</param>
    public static Option<ByteSize> Heap(string description, ByteSize defaultSize, ulong min = 16, ulong max = MaxHeapBytes, bool powerOfTwo = false)
        => new("--heap")
        {
            HelpName = "SIZE",
            Description = $"{description} ({HeapRule(min, max, powerOfTwo)}).",
            DefaultValueFactory = _ => defaultSize,
            CustomParser = result => ParseHeap(result, min, max, powerOfTwo) ?? defaultSize,
        };

    /// <summary><c>--heap SIZE</c> whose default the command works out itself (null when absent).</summary>
    public static Option<ByteSize?> OptionalHeap(string description, ulong min = 16, ulong max = MaxHeapBytes, bool powerOfTwo = false)
        => new("--heap")
        {
            HelpName = "SIZE",
            Description = $"{description} ({HeapRule(min, max, powerOfTwo)}).",
            CustomParser = result => ParseHeap(result, min, max, powerOfTwo),
        };

    /// <summary><c>-a/--allocator NAME</c>, repeatable (<c>-a buddy-heap -a glibc</c>), accepting only <paramref name="names"/>.</summary>
    /// <param name="names">The engines the command runs (ids of <see cref="Engines.EngineCatalog"/>).</param>
    /// <param name="description">What the command does with them, for <c>--help</c>; the known names are appended.</param>
    public static Option<string[]> Allocators(IReadOnlyList<string> names, string description)
    {
        var option = new Option<string[]>("--allocator", "-a") { HelpName = "NAME", Description = $"{description} Known: {string.Join(", ", names)}." };
        option.AcceptOnlyFromAmong([.. names]);
        return option;
    }

    /// <summary><c>-a/--allocator NAME</c> where a command draws one engine (<c>map</c>, <c>explore</c>).</summary>
    public static Option<string> Allocator(IReadOnlyList<string> names, string defaultName, string description)
    {
        var option = new Option<string>("--allocator", "-a") { HelpName = "NAME", Description = $"{description} Known: {string.Join(", ", names)}.", DefaultValueFactory = _ => defaultName };
        option.AcceptOnlyFromAmong([.. names]);
        return option;
    }

    /// <summary>An input file that must exist (a trace, a library).</summary>
    public static Option<FileInfo> ExistingFile(string name, string description)
    {
        var option = new Option<FileInfo>(name) { Description = description };
        option.AcceptExistingOnly();
        return option;
    }

    /// <summary>The trace argument: a file that must exist, plain or gzip.</summary>
    public static Argument<FileInfo> Trace(string description, bool optional = false)
    {
        var argument = new Argument<FileInfo>("trace") { Description = description, Arity = optional ? ArgumentArity.ZeroOrOne : ArgumentArity.ExactlyOne };
        argument.AcceptExistingOnly();
        return argument;
    }

    /// <summary>A picture to write, <c>FILE.svg</c> or <c>FILE.png</c> (the map's formats).</summary>
    public static Option<FileInfo?> Picture(string name, string description, string? defaultPath = null, params string[] aliases)
    {
        var option = new Option<FileInfo?>(name, aliases) { Description = description };
        if (defaultPath is not null)
        {
            option.DefaultValueFactory = _ => new FileInfo(defaultPath);
        }

        option.Validators.Add(result =>
        {
            if (result.GetValueOrDefault<FileInfo?>() is { } file && file.Extension.ToLowerInvariant() is not (".svg" or ".png"))
            {
                result.AddError($"{name} '{file.Name}': use a .svg or .png file name.");
            }
        });
        return option;
    }

    /// <summary><c>--ops N</c>: how many operations of a trace or workload to replay (0 or more).</summary>
    public static Option<int> Ops(int defaultOps, string description = "How many operations of the trace to replay.")
        => AtLeast(new Option<int>("--ops") { Description = description, DefaultValueFactory = _ => defaultOps }, 0);

    /// <summary><c>--eager</c>: the lazy caches off.</summary>
    public static Option<bool> Eager() => new("--eager") { Description = "Turn the lazy caches off: every free merges at once, as in the tutorial." };

    /// <summary><c>--placement</c> of a <see cref="BuddyTree"/>.</summary>
    public static Option<string> Placement()
    {
        var option = new Option<string>("--placement") { Description = "For buddy-tree: right-first (the tutorial), left-first (buddy2.c) or best-fit.", DefaultValueFactory = _ => "right-first" };
        option.AcceptOnlyFromAmong("right-first", "left-first", "best-fit");
        return option;
    }

    /// <summary><c>--seed N</c> of a SplitMix64 run.</summary>
    public static Option<ulong> Seed(string description = "SplitMix64 seed; the run is fixed by it.")
        => new("--seed") { Description = description, DefaultValueFactory = _ => 0x5EED };

    /// <summary>Adds a validator: the option's value must be at least <paramref name="min"/>.</summary>
    public static Option<T> AtLeast<T>(Option<T> option, T min)
        where T : INumber<T>
    {
        option.Validators.Add(result =>
        {
            // A token that is not a number already failed to convert (its own error); only a number is compared.
            if (result.Tokens.Count == 1 && T.TryParse(result.Tokens[0].Value, CultureInfo.InvariantCulture, out T? value) && value < min)
            {
                result.AddError(string.Create(CultureInfo.InvariantCulture, $"{option.Name} must be at least {min}, not {value}."));
            }
        });
        return option;
    }

    private static ByteSize? ParseHeap(ArgumentResult result, ulong min, ulong max, bool powerOfTwo)
    {
        if (result.Tokens.Count == 0)
        {
            return null;
        }

        string text = result.Tokens[0].Value;
        if (!ByteSize.TryParse(text, out ByteSize size))
        {
            result.AddError($"--heap '{text}' is not a size: write {ByteSize.Examples}.");
        }
        else if (size.Bytes < min || size.Bytes > max || (powerOfTwo && !BitOperations.IsPow2(size.Bytes)))
        {
            result.AddError($"--heap '{text}' must be {HeapRule(min, max, powerOfTwo)}.");
        }

        return size;
    }

    private static string HeapRule(ulong min, ulong max, bool powerOfTwo)
        => $"{(powerOfTwo ? "a power of two " : string.Empty)}from {ByteSize.Long(min)} to {ByteSize.Long(max)}, {ByteSize.Examples}";
}
