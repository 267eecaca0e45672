// The README's Kestrel sample, line for line (ReadmeSampleTests in the main test project holds the README block to it).
using BuddySystem.AspNetCore;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;

namespace BuddySystem.AspNetCore.Tests;

/// <summary>The README's Kestrel sample as a method, its lines verbatim.</summary>
internal static class ReadmeSamples
{
    /// <summary>README block 8: the builder with Kestrel's buffers from a buddy heap.</summary>
    public static WebApplication KestrelPool(string[] args)
    {
        var builder = WebApplication.CreateBuilder(args);
        builder.Services.AddBuddyMemoryPool(options => options.HeapSize = 64L << 20);   // replaces Kestrel's pinned-block pool
        return builder.Build();
    }
}
