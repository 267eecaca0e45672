using System.Net;
using System.Text.Json;
using BuddySystem.KestrelBench;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.DependencyInjection;

namespace BuddySystem.AspNetCore.Tests;

// Keeps bench/BuddySystem.KestrelBench (run by tools/kestrel-bench.sh, not by the tests) from rotting: every pool of its
// table starts, serves /bytes/{n} with the documented content, and reports a heap that validates.
public class KestrelBenchSmokeTests
{
    public static TheoryData<string> Pools => new(BenchPool.All.Select(p => p.Name));

    [Theory]
    [MemberData(nameof(Pools))]
    public async Task BenchServer_GetBytes1000_ServesPatternAndStatsValidate(string poolName)
    {
        BenchPool pool = BenchPool.Find(poolName)!;
        await using WebApplication app = BenchServer.Build(pool, 8 << 20, "http://127.0.0.1:0");
        await app.StartAsync();
        string address = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.Single();
        using var client = new HttpClient(new SocketsHttpHandler { UseProxy = false }) { BaseAddress = new Uri(address) };

        byte[] body = await client.GetByteArrayAsync(new Uri("/bytes/1000", UriKind.Relative));
        Assert.Equal(1000, body.Length);
        for (int i = 0; i < body.Length; i++)
        {
            Assert.True(body[i] == (1000 + i) % 251, $"byte {i} is {body[i]}, expected {(1000 + i) % 251}");
        }

        using (HttpResponseMessage big = await client.GetAsync(new Uri("/bytes/300000", UriKind.Relative)))
        {
            Assert.Equal(HttpStatusCode.OK, big.StatusCode);
            Assert.Equal(BenchServer.ExpectedBytes(300_000), await big.Content.ReadAsByteArrayAsync());
        }

        using JsonDocument stats = JsonDocument.Parse(await client.GetStringAsync(new Uri("/stats?validate=1", UriKind.Relative)));
        Assert.Equal(poolName, stats.RootElement.GetProperty("pool").GetString());
        if (pool.Configure is not null)
        {
            Assert.Equal("ok", stats.RootElement.GetProperty("validate").GetString());
            Assert.Equal(8L << 20, stats.RootElement.GetProperty("heapBytes").GetInt64());
            Assert.Equal(0, stats.RootElement.GetProperty("failedRents").GetInt64());
        }

        await app.StopAsync();
    }
}
