namespace BuddySystem.Cli.Bench.Programs;

/// <summary>A malloc a program of workload P runs on: glibc's own (no preload), or a library given to <c>LD_PRELOAD</c>.</summary>
/// <param name="Id">glibc, mimalloc or buddymalloc.</param>
/// <param name="Preload">The library for <c>LD_PRELOAD</c>, or null for glibc.</param>
/// <param name="Unavailable">Why it cannot run here (the library is missing), or null.</param>
internal sealed record ProgramAllocator(string Id, string? Preload, string? Unavailable)
{
    /// <summary>Debian's libmimalloc2.0.</summary>
    public const string MimallocPath = "/usr/lib/x86_64-linux-gnu/libmimalloc.so.2";

    /// <summary>The ids, in table order.</summary>
    public static IReadOnlyList<string> Ids { get; } = ["glibc", "mimalloc", "buddymalloc"];

    /// <summary>The allocator named <paramref name="id"/>; <paramref name="library"/> is libbuddymalloc.so (null: not found).</summary>
    public static ProgramAllocator Create(string id, string? library) => id switch
    {
        "glibc" => new("glibc", null, null),
        "mimalloc" => new("mimalloc", MimallocPath, File.Exists(MimallocPath) ? null : $"{MimallocPath} not found (install it: apt-get install libmimalloc2.0)"),
        "buddymalloc" => new("buddymalloc", library is null ? null : Path.GetFullPath(library),
            library is not null && File.Exists(library) ? null : $"{library ?? Commands.RunCommand.LibraryPath} not found (build it: dotnet publish src/BuddySystem.Malloc -c Release -o artifacts/malloc)"),
        _ => throw new ArgumentException($"unknown allocator '{id}' for --programs (known: {string.Join(", ", Ids)})", nameof(id)),
    };
}
