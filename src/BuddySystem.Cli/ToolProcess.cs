namespace BuddySystem.Cli;

/// <summary>Starts this tool again as a child process, with standard output and error redirected.</summary>
internal static class ToolProcess
{
    /// <summary>How to run <c>buddy <paramref name="args"/></c>: the tool's own executable when it runs as one, else
    /// <c>dotnet buddy.dll</c> (under <c>dotnet test</c> the process is the test host, not the tool).</summary>
    public static ProcessStartInfo StartInfo(params string[] args)
    {
        string dll = typeof(ToolProcess).Assembly.Location;
        string? host = Environment.ProcessPath;
        string apphost = Path.Combine(Path.GetDirectoryName(dll)!, Path.GetFileNameWithoutExtension(dll));
        bool underDotnet = host != null && Path.GetFileNameWithoutExtension(host) == "dotnet";
        string program = underDotnet ? host! : File.Exists(apphost) ? apphost : "dotnet";
        var start = new ProcessStartInfo(program) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        if (program != apphost)
        {
            start.ArgumentList.Add(dll);
        }

        foreach (string arg in args)
        {
            start.ArgumentList.Add(arg);
        }

        return start;
    }
}
