using System.Globalization;
using BuddySystem.KestrelBench;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.Hosting;

// Two modes: the server (--pool NAME --heap SIZE --urls URL), and `plot RESULTS.json OUT.png` for tools/kestrel-bench.sh.
if (args.Length > 0 && args[0] == "plot")
{
    if (args.Length != 3)
    {
        return Fail("usage: plot RESULTS.json OUT.png");
    }

    try
    {
        KestrelBenchPlot.Save(args[1], args[2]);
        return 0;
    }
    catch (Exception e) when (e is IOException or System.Text.Json.JsonException or KeyNotFoundException or InvalidOperationException)
    {
        return Fail($"plot: {e.Message}");
    }
}

string poolName = "buddy-concurrent";
string heap = "256MiB";
string urls = "http://127.0.0.1:5000";
for (int i = 0; i < args.Length; i++)
{
    string? value = i + 1 < args.Length ? args[i + 1] : null;
    switch (args[i])
    {
        case "--pool" when value is not null: poolName = value; i++; break;
        case "--heap" when value is not null: heap = value; i++; break;
        case "--urls" when value is not null: urls = value; i++; break;
        default: return Fail($"unknown or incomplete option '{args[i]}' (use --pool NAME --heap SIZE --urls URL)");
    }
}

BenchPool? pool = BenchPool.Find(poolName);
if (pool is null)
{
    return Fail($"unknown pool '{poolName}' (one of {string.Join(", ", BenchPool.All.Select(p => p.Name))})");
}

if (!TryParseSize(heap, out long heapSize))
{
    return Fail($"bad heap size '{heap}' (bytes, or with KiB/MiB/GiB)");
}

WebApplication app;
try
{
    app = BenchServer.Build(pool, heapSize, urls);
}
catch (ArgumentOutOfRangeException e)
{
    return Fail(e.Message.Split('\n')[0]);
}

await using (app)
{
    app.Lifetime.ApplicationStarted.Register(() => Console.WriteLine("listening"));
    try
    {
        // Ctrl-C and SIGTERM stop the host gracefully (ConsoleLifetime); RunAsync then returns.
        await app.RunAsync();
    }
    catch (IOException e)
    {
        return Fail($"cannot listen on {urls}: {e.Message}");
    }
}

return 0;

static int Fail(string message)
{
    Console.Error.WriteLine($"kestrel-bench: {message}");
    return 2;
}

static bool TryParseSize(string text, out long bytes)
{
    (string suffix, long scale)[] units = [("GiB", 1L << 30), ("MiB", 1L << 20), ("KiB", 1L << 10), ("B", 1)];
    foreach ((string suffix, long scale) in units)
    {
        if (text.EndsWith(suffix, StringComparison.OrdinalIgnoreCase))
        {
            bool ok = long.TryParse(text.AsSpan(0, text.Length - suffix.Length), NumberStyles.None, CultureInfo.InvariantCulture, out long count);
            bytes = count * scale;
            return ok && count > 0 && count <= long.MaxValue / scale;
        }
    }

    return long.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out bytes) && bytes > 0;
}
