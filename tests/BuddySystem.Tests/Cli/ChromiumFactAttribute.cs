namespace BuddySystem.Tests;

/// <summary>A fact that needs headless Chromium; skipped, saying how to get it, when /usr/bin/chromium is missing.</summary>
public sealed class ChromiumFactAttribute : FactAttribute
{
    public const string Path = "/usr/bin/chromium";

    public ChromiumFactAttribute()
    {
        if (!File.Exists(Path))
        {
            Skip = $"No Chromium at {Path}: install it (apt-get install chromium; .ci/run does) to test the explorer page in a browser.";
        }
    }
}
