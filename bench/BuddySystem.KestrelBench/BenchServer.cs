using System.Globalization;
using System.Text.Json;
using BuddySystem.AspNetCore;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace BuddySystem.KestrelBench;

/// <summary>
/// The benchmark server: Kestrel on one <see cref="BenchPool"/>, with <c>GET /bytes/{n}</c> (n bytes, byte i being
/// <c>(n + i) % 251</c>), <c>POST /echo</c> (the request body back) and <c>GET /stats</c> (the heap, failed rents, RSS;
/// <c>?validate=1</c> also checks the heap's invariants, to be asked only while no other request runs).
/// </summary>
public static class BenchServer
{
    /// <summary>Largest n that <c>/bytes/{n}</c> serves.</summary>
    public const int MaxBytes = 64 << 20;

    /// <summary>The period of the body pattern: a prime, so a body shifted by whole kibibytes still differs.</summary>
    public const int Period = 251;

    private const int Chunk = 64 << 10;
    private static readonly byte[] s_pattern = CreatePattern();

    /// <summary>The expected body of <c>GET /bytes/{n}</c>.</summary>
    /// <param name="n">The body length.</param>
    /// <returns>n bytes, byte i being <c>(n + i) % 251</c>.</returns>
    public static byte[] ExpectedBytes(int n)
    {
        var body = new byte[n];
        for (int i = 0; i < n; i++)
        {
            body[i] = (byte)((n + (long)i) % Period);
        }

        return body;
    }

    /// <summary>Builds the server (not started).</summary>
    /// <param name="pool">The memory pool Kestrel runs on.</param>
    /// <param name="heapSize">Bytes of the buddy heap (ignored for Kestrel's own pool).</param>
    /// <param name="urls">Where to listen, e.g. <c>http://127.0.0.1:5000</c> (port 0: any free port).</param>
    /// <returns>The application; <c>RunAsync</c> it, or <c>StartAsync</c> in a test.</returns>
    public static WebApplication Build(BenchPool pool, long heapSize, string urls)
    {
        ArgumentNullException.ThrowIfNull(pool);
        WebApplicationBuilder builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.UseUrls(urls);
        builder.Services.Configure<HostOptions>(o => o.ShutdownTimeout = TimeSpan.FromSeconds(5));
        if (pool.Configure is not null)
        {
            builder.Services.AddBuddyMemoryPool(options =>
            {
                options.HeapSize = heapSize;
                options.MetricsName = null;
                pool.Configure(options);
            });
            builder.Services.AddSingleton<CountingMemoryPoolFactory>();
            builder.Services.AddSingleton<IMemoryPoolFactory<byte>>(provider => provider.GetRequiredService<CountingMemoryPoolFactory>());
        }

        WebApplication app = builder.Build();
        app.MapGet("/bytes/{n:int}", WriteBytesAsync);
        app.MapPost("/echo", static (HttpContext context) =>
            context.Request.BodyReader.CopyToAsync(context.Response.BodyWriter, context.RequestAborted));
        app.MapGet("/stats", (HttpContext context) => WriteStatsAsync(context, pool, app.Services));
        return app;
    }

    private static async Task WriteBytesAsync(HttpContext context, int n)
    {
        if ((uint)n > MaxBytes)
        {
            context.Response.StatusCode = StatusCodes.Status400BadRequest;
            return;
        }

        context.Response.ContentType = "application/octet-stream";
        context.Response.ContentLength = n;
        for (int i = 0; i < n; i += Chunk)
        {
            int length = Math.Min(Chunk, n - i);
            int start = (int)((n + (long)i) % Period);
            await context.Response.BodyWriter.WriteAsync(s_pattern.AsMemory(start, length), context.RequestAborted);
        }
    }

    private static async Task WriteStatsAsync(HttpContext context, BenchPool pool, IServiceProvider services)
    {
        CountingMemoryPoolFactory? factory = services.GetService<CountingMemoryPoolFactory>();
        string? validation = null;
        if (context.Request.Query.ContainsKey("validate") && factory is not null && pool.Validate is not null)
        {
            try
            {
                pool.Validate(factory.Inner.Allocator);
                validation = "ok";
            }
            catch (HeapCorruptionException e)
            {
                validation = e.Message;
            }
        }

        context.Response.ContentType = "application/json";
        using var json = new Utf8JsonWriter(context.Response.BodyWriter);
        json.WriteStartObject();
        json.WriteString("pool", pool.Name);
        json.WriteNumber("pid", Environment.ProcessId);
        json.WriteNumber("vmRssKiB", ReadStatusKiB("VmRSS:"));
        json.WriteNumber("vmHwmKiB", ReadStatusKiB("VmHWM:"));
        json.WriteNumber("gcHeapBytes", GC.GetTotalMemory(false));
        if (factory is not null)
        {
            HeapStats stats = factory.Inner.Heap.Stats;
            json.WriteNumber("heapBytes", stats.TotalBytes);
            json.WriteNumber("allocatedBytes", stats.AllocatedBytes);
            json.WriteNumber("liveBlocks", stats.LiveBlocks);
            json.WriteNumber("failedAllocations", stats.FailedAllocations);
            json.WriteNumber("failedRents", factory.FailedRents);
            json.WriteNumber("poolsCreated", factory.Inner.PoolsCreated);
        }

        if (validation is not null)
        {
            json.WriteString("validate", validation);
        }

        json.WriteEndObject();
        await json.FlushAsync(context.RequestAborted);
    }

    private static long ReadStatusKiB(string field)
    {
        if (!OperatingSystem.IsLinux())
        {
            return -1;
        }

        foreach (string line in File.ReadLines("/proc/self/status"))
        {
            if (line.StartsWith(field, StringComparison.Ordinal))
            {
                return long.Parse(line.AsSpan(field.Length).Trim().TrimEnd("kB").Trim(), NumberStyles.Integer, CultureInfo.InvariantCulture);
            }
        }

        return -1;
    }

    private static byte[] CreatePattern()
    {
        var pattern = new byte[Chunk + Period];
        for (int i = 0; i < pattern.Length; i++)
        {
            pattern[i] = (byte)(i % Period);
        }

        return pattern;
    }
}
