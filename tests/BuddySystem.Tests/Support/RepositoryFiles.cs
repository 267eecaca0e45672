namespace BuddySystem.Tests;

/// <summary>Files of the repository the tests run from (found by walking up from the test binaries to BuddySystem.slnx).</summary>
internal static class RepositoryFiles
{
    /// <summary>The repository's root folder.</summary>
    public static string Root { get; } = FindRoot();

    /// <summary>A path under the root, e.g. <c>Path("samples", "bash.trace.gz")</c>.</summary>
    public static string Path(params string[] parts) => System.IO.Path.Combine([Root, .. parts]);

    private static string FindRoot()
    {
        for (var directory = new DirectoryInfo(AppContext.BaseDirectory); directory != null; directory = directory.Parent)
        {
            if (File.Exists(System.IO.Path.Combine(directory.FullName, "BuddySystem.slnx")))
            {
                return directory.FullName;
            }
        }

        throw new DirectoryNotFoundException("BuddySystem.slnx not found above " + AppContext.BaseDirectory);
    }
}
