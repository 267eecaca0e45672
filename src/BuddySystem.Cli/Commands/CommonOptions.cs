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
    /// <summary><c>--heap SIZE</c> with a default: <c>4096</c>, <c>64KiB</c>, <c>32MiB</c>, <c>1GiB</c>.</summary>
    /// <param name="description">What the heap is, for <c>--help</c>; the range is appended.</param>
    /// <param name="defaultSize">The size when the option is absent.</param>
    /// <param name="range">The sizes the command takes (one of <see cref="HeapRange"/>'s).</param>
    public static Option<ByteSize> Heap(string description, ByteSize defaultSize, HeapRange range)
        => new("--heap")
        {
            HelpName = "SIZE",
            Description = $"{description} ({range.Rule}, {range.Examples}).",
            DefaultValueFactory = _ => defaultSize,
            CustomParser = result => ParseHeap(result, range) ?? defaultSize,
        };

    /// <summary><c>--heap SIZE</c> whose default the command works out itself (null when absent).</summary>
    public static Option<ByteSize?> OptionalHeap(string description, HeapRange range)
        => new("--heap")
        {
            HelpName = "SIZE",
            Description = $"{description} ({range.Rule}, {range.Examples}).",
            CustomParser = result => ParseHeap(result, range),
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

    /// <summary><c>--library FILE</c>: an allocator to preload, which must exist and be an ELF shared object of this
    /// machine exporting <c>malloc</c> (<see cref="PreloadLibrary"/>); ld.so would skip anything else without failing.</summary>
    public static Option<FileInfo> MallocLibrary(string description)
    {
        Option<FileInfo> option = ExistingFile("--library", description);
        option.Validators.Add(result =>
        {
            // The path as given (a missing file is AcceptExistingOnly's error, and its value cannot be read).
            if (result.Tokens.Count == 1 && File.Exists(result.Tokens[0].Value) && PreloadLibrary.Problem(result.Tokens[0].Value) is { } problem)
            {
                result.AddError($"--library {result.Tokens[0].Value} {problem}.");
            }
        });
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

        return Output(option, ".svg", ".png");
    }

    /// <summary>A file the command writes (<c>--json</c>, <c>--markdown</c>, <c>--plot</c>, <c>--out</c>): checked while
    /// parsing, so that a bad path fails before the work, not after it.</summary>
    /// <param name="name">The option's name, e.g. <c>--json</c>.</param>
    /// <param name="description">For <c>--help</c>.</param>
    /// <param name="extensions">The extensions of the format written, e.g. <c>.json</c>; none for a file of no format.</param>
    public static Option<string?> OutputPath(string name, string description, params string[] extensions)
        => Output(new Option<string?>(name) { Description = description, HelpName = "FILE" }, extensions);

    /// <summary>Adds the check of an output file to <paramref name="option"/>: its folder exists and its extension is one
    /// of <paramref name="extensions"/> (any when none). A default value is not checked: it is a plain name in the current
    /// folder, chosen to pass.</summary>
    public static Option<T> Output<T>(Option<T> option, params string[] extensions)
    {
        option.Validators.Add(result =>
        {
            if (result.Tokens.Count != 1)
            {
                return;
            }

            string path = result.Tokens[0].Value;
            string extension = Path.GetExtension(path);
            if (extensions.Length > 0 && !extensions.Contains(extension, StringComparer.OrdinalIgnoreCase))
            {
                string expected = extensions.Length == 1 ? extensions[0] : string.Join(", ", extensions[..^1]) + " or " + extensions[^1];
                result.AddError($"{option.Name} '{path}': use a {expected} file name.");
                return;
            }

            string? folder = Path.GetDirectoryName(Path.GetFullPath(path));
            if (folder is not null && !Directory.Exists(folder))
            {
                result.AddError($"{option.Name} '{path}': the folder {folder} does not exist.");
            }
            else if (Directory.Exists(path))
            {
                result.AddError($"{option.Name} '{path}' is a folder; give a file name.");
            }
        });
        return option;
    }

    /// <summary>Whether <paramref name="option"/> was written on the command line, rather than left to its default.</summary>
    public static bool Given(ParseResult result, Option option) => result.GetResult(option) is { Implicit: false };

    /// <summary>Refuses options the command would ignore in this case, so that none is dropped without a word: throws
    /// naming the first of <paramref name="options"/> that was given.</summary>
    /// <param name="result">The parsed command line.</param>
    /// <param name="context">The case, for the message: <c>--tutorial</c>, <c>-a buddy-tree</c>.</param>
    /// <param name="options">The options that case ignores.</param>
    /// <exception cref="BadInputException">One of <paramref name="options"/> was given.</exception>
    public static void RefuseIgnored(ParseResult result, string context, params Symbol[] options)
    {
        foreach (Symbol symbol in options)
        {
            bool given = symbol switch
            {
                Option option => Given(result, option),
                Argument argument => result.GetResult(argument) is { Implicit: false, Tokens.Count: > 0 },
                _ => false,
            };
            if (given)
            {
                string name = symbol is Argument ? $"a {symbol.Name}" : symbol.Name;
                throw new BadInputException($"{name} does not go with {context}: it would be ignored.");
            }
        }
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

    /// <summary>Adds a validator: the option's value must be at most <paramref name="max"/>, for the reason given.</summary>
    public static Option<T> AtMost<T>(Option<T> option, T max, string why)
        where T : INumber<T>
    {
        option.Validators.Add(result =>
        {
            if (result.Tokens.Count == 1 && T.TryParse(result.Tokens[0].Value, CultureInfo.InvariantCulture, out T? value) && value > max)
            {
                result.AddError(string.Create(CultureInfo.InvariantCulture, $"{option.Name} must be at most {max}, not {value}: {why}."));
            }
        });
        return option;
    }

    private static ByteSize? ParseHeap(ArgumentResult result, HeapRange range)
    {
        if (result.Tokens.Count == 0)
        {
            return null;
        }

        string text = result.Tokens[0].Value;
        if (!ByteSize.TryParse(text, out ByteSize size))
        {
            result.AddError($"--heap '{text}' is not a size: write {range.Examples}.");
        }
        else if (!range.Contains(size.Bytes))
        {
            result.AddError(range.Refusal(text));
        }

        return size;
    }
}
