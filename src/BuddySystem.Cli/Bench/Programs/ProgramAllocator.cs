namespace BuddySystem.Cli.Bench.Programs;

/// <summary>A malloc a program of workload P runs on: glibc's own (no preload), or a library given to <c>LD_PRELOAD</c>.</summary>
/// <param name="Id">glibc, mimalloc, jemalloc, tcmalloc, scudo, buddymalloc or buddymalloc-harden (BUDDY_MALLOC_HARDEN=1).</param>
/// <param name="Preload">The library for <c>LD_PRELOAD</c>, or null for glibc.</param>
/// <param name="Unavailable">Why it cannot run here (the library is missing), or null.</param>
internal sealed record ProgramAllocator(string Id, string? Preload, string? Unavailable)
{
    /// <summary>Variables set for every program run on this allocator (none for most).</summary>
    public IReadOnlyDictionary<string, string> Environment { get; init; } = new Dictionary<string, string>();

    /// <summary>Debian's libmimalloc2.0.</summary>
    public const string MimallocPath = "/usr/lib/x86_64-linux-gnu/libmimalloc.so.2";

    /// <summary>Debian's libjemalloc2.</summary>
    public const string JemallocPath = "/usr/lib/x86_64-linux-gnu/libjemalloc.so.2";

    /// <summary>Debian's libtcmalloc-minimal4 (gperftools' tcmalloc without the profiler).</summary>
    public const string TcmallocPath = "/usr/lib/x86_64-linux-gnu/libtcmalloc_minimal.so.4";

    /// <summary>LLVM's standalone Scudo, the hardened peer, from Debian's libclang-rt-16-dev.</summary>
    public const string ScudoPath = "/usr/lib/llvm-16/lib/clang/16/lib/linux/libclang_rt.scudo_standalone-x86_64.so";

    /// <summary>The ids, in table order.</summary>
    public static IReadOnlyList<string> Ids { get; } = ["glibc", "mimalloc", "jemalloc", "tcmalloc", "scudo", "buddymalloc", "buddymalloc-harden"];

    /// <summary>The allocator named <paramref name="id"/>; <paramref name="library"/> is libbuddymalloc.so (null: not found).</summary>
    public static ProgramAllocator Create(string id, string? library) => id switch
    {
        "glibc" => new("glibc", null, null),
        "mimalloc" => Peer("mimalloc", MimallocPath, "libmimalloc2.0"),
        "jemalloc" => Peer("jemalloc", JemallocPath, "libjemalloc2"),
        "tcmalloc" => Peer("tcmalloc", TcmallocPath, "libtcmalloc-minimal4"),
        "scudo" => Peer("scudo", ScudoPath, "libclang-rt-16-dev"),
        "buddymalloc" => Ours("buddymalloc", library),
        "buddymalloc-harden" => Ours("buddymalloc-harden", library) with { Environment = new Dictionary<string, string> { [Commands.RunCommand.HardenVariable] = "1" } },
        _ => throw new ArgumentException($"unknown allocator '{id}' for --programs (known: {string.Join(", ", Ids)})", nameof(id)),
    };

    /// <summary>libbuddymalloc.so (null: not found), in the mode its <see cref="Environment"/> sets.</summary>
    private static ProgramAllocator Ours(string id, string? library) =>
        new(id, library is null ? null : Path.GetFullPath(library),
            library is not null && File.Exists(library) ? null : $"{library ?? Commands.RunCommand.LibraryPath} not found (build it: dotnet publish src/BuddySystem.Malloc -c Release -o artifacts/malloc)");

    /// <summary>A peer preloaded from the Debian package <paramref name="package"/>; skipped with a note when its library is missing.</summary>
    private static ProgramAllocator Peer(string id, string path, string package) =>
        new(id, path, File.Exists(path) ? null : $"{path} not found (install it: apt-get install {package})");
}
