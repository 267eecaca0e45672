using System.Diagnostics;

namespace BuddySystem.Tests;

/// <summary>Loads a page in headless Chromium and returns the DOM after its scripts ran.</summary>
internal static class HeadlessChromium
{
    /// <summary>The DOM of <paramref name="url"/>; fails the test when Chromium prints no page containing
    /// <paramref name="expected"/>, or logs an uncaught script error.</summary>
    public static string DumpDom(string url, string profileDirectory, string expected)
    {
        var start = new ProcessStartInfo(ChromiumFactAttribute.Path)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (string argument in new[]
        {
            "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
            "--disable-sync", "--no-first-run", "--user-data-dir=" + Path.Combine(profileDirectory, "profile"),
            "--enable-logging=stderr", "--v=0", "--dump-dom", url,
        })
        {
            start.ArgumentList.Add(argument);
        }

        using Process chromium = Process.Start(start)!;
        Task<string> stdout = chromium.StandardOutput.ReadToEndAsync();
        Task<string> stderr = chromium.StandardError.ReadToEndAsync();
        if (!chromium.WaitForExit(TimeSpan.FromSeconds(120)))
        {
            chromium.Kill(entireProcessTree: true);
            Assert.Fail("Chromium did not finish within 120 s");
        }

        string dom = stdout.GetAwaiter().GetResult();
        string log = stderr.GetAwaiter().GetResult();
        Assert.True(dom.Contains(expected, StringComparison.Ordinal), "Chromium printed no page DOM. Its errors: " + log);

        // The pages' scripts log nothing; an exception would show as an "Uncaught" console line.
        Assert.DoesNotContain("Uncaught", log, StringComparison.Ordinal);
        return dom;
    }
}
