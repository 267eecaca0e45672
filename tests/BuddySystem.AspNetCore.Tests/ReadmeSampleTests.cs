using Microsoft.AspNetCore.Builder;

namespace BuddySystem.AspNetCore.Tests;

/// <summary>The README's Kestrel sample builds an application whose memory pool is the buddy pool's factory.</summary>
public sealed class ReadmeSampleTests
{
    [Fact]
    public async Task KestrelSample_BuildsAnApplication()
    {
        await using WebApplication app = ReadmeSamples.KestrelPool([]);
        Assert.NotNull(app.Services);
    }
}
