using System.Diagnostics;
using System.IO.Compression;

namespace BuddySystem.Tests;

/// <summary>The buddy tool as a user gets it: packed to a nupkg, installed with <c>dotnet tool install</c>, run.</summary>
public sealed class PackageTests : IDisposable
{
    private readonly string _directory = Directory.CreateTempSubdirectory("buddy-package-").FullName;

    public void Dispose() => Directory.Delete(_directory, recursive: true);

    [Fact]
    public void ToolPackage_InstalledFromTheNupkg_RunsTheDemoAndCarriesReadmeAndSymbols()
    {
        string repository = FindRepository();
        string configuration = AppContext.BaseDirectory.Contains($"{Path.DirectorySeparatorChar}Debug{Path.DirectorySeparatorChar}", StringComparison.Ordinal) ? "Debug" : "Release";
        string packages = Path.Combine(_directory, "packages");

        // --no-build: the tool was built with this test project, in the same configuration.
        Run("dotnet", ["pack", Path.Combine(repository, "src", "BuddySystem.Cli"), "-c", configuration, "--no-build", "-o", packages], repository);
        string nupkg = Assert.Single(Directory.GetFiles(packages, "BuddySystem.Cli.*.nupkg"));
        Assert.Single(Directory.GetFiles(packages, "BuddySystem.Cli.*.snupkg"));
        using (ZipArchive archive = ZipFile.OpenRead(nupkg))
        {
            Assert.Contains(archive.Entries, e => e.FullName == "README.md");
            Assert.Contains(archive.Entries, e => e.FullName.EndsWith("/buddy.dll", StringComparison.Ordinal));
        }

        // Only the folder as a source: the install must not need the network.
        string config = Path.Combine(_directory, "nuget.config");
        File.WriteAllText(config, $"""
            <?xml version="1.0" encoding="utf-8"?>
            <configuration><packageSources><clear /><add key="local" value="{packages}" /></packageSources></configuration>
            """);
        string tools = Path.Combine(_directory, "tools");
        Run("dotnet", ["tool", "install", "--tool-path", tools, "--configfile", config, "BuddySystem.Cli"], _directory);

        string output = Run(Path.Combine(tools, OperatingSystem.IsWindows() ? "buddy.exe" : "buddy"), ["demo"], _directory);
        Assert.Contains("heap_value assertion successfully!", output, StringComparison.Ordinal);
        Assert.Contains("vec assertion successfully!", output, StringComparison.Ordinal);
    }

    private static string Run(string program, string[] arguments, string directory)
    {
        var start = new ProcessStartInfo(program) { WorkingDirectory = directory, RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (string argument in arguments)
        {
            start.ArgumentList.Add(argument);
        }

        start.Environment["DOTNET_CLI_TELEMETRY_OPTOUT"] = "1";
        start.Environment["DOTNET_NOLOGO"] = "1";
        using Process process = Process.Start(start)!;
        Task<string> error = process.StandardError.ReadToEndAsync();
        string output = process.StandardOutput.ReadToEnd();
        Assert.True(process.WaitForExit(TimeSpan.FromMinutes(3)), $"{program} {string.Join(' ', arguments)} did not finish");
        Assert.True(process.ExitCode == 0, $"{program} {string.Join(' ', arguments)} exited {process.ExitCode}: {output} {error.Result}");
        return output;
    }

    private static string FindRepository()
    {
        for (string? dir = AppContext.BaseDirectory; dir != null; dir = Path.GetDirectoryName(dir))
        {
            if (File.Exists(Path.Combine(dir, "BuddySystem.slnx")))
            {
                return dir;
            }
        }

        throw new InvalidOperationException("the repository (BuddySystem.slnx) is not above the test's folder");
    }
}
