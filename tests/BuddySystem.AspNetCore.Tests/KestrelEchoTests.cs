using System.Buffers;
using System.IO.Pipelines;
using System.Net;
using BuddySystem.Buffers;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Xunit.Abstractions;

namespace BuddySystem.AspNetCore.Tests;

public class KestrelEchoTests(ITestOutputHelper output)
{
    private const int Requests = 1_000;
    private const int MaxBody = 1 << 20;

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task Kestrel_1000EchoRequestsUpTo1MiB_ServedFromBuddyHeapAndIdleAfterShutdown(bool concurrentHeap)
    {
        WebApplicationBuilder builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.UseKestrel(kestrel => kestrel.Listen(IPAddress.Loopback, 0));
        builder.Services.AddBuddyMemoryPool(options =>
        {
            options.HeapSize = 64L << 20;
            options.UseConcurrentHeap = concurrentHeap;
        });
        await using WebApplication app = builder.Build();
        app.MapPost("/echo", static (HttpContext context) =>
            context.Request.BodyReader.CopyToAsync(context.Response.BodyWriter, context.RequestAborted));

        var factory = Assert.IsType<BuddyMemoryPoolFactory>(app.Services.GetRequiredService<IMemoryPoolFactory<byte>>());
        await app.StartAsync();
        string address = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.Single();
        Assert.StartsWith("http://127.0.0.1:", address, StringComparison.Ordinal);

        long bytesEchoed = 0;
        using (var client = new HttpClient(new SocketsHttpHandler { UseProxy = false }) { BaseAddress = new Uri(address) })
        {
            int next = -1;
            async Task Worker()
            {
                for (int request = Interlocked.Increment(ref next); request < Requests; request = Interlocked.Increment(ref next))
                {
                    byte[] body = BodyFor(request);
                    using var content = new ByteArrayContent(body);
                    using HttpResponseMessage response = await client.PostAsync(new Uri("/echo", UriKind.Relative), content);
                    Assert.Equal(HttpStatusCode.OK, response.StatusCode);
                    byte[] echoed = await response.Content.ReadAsByteArrayAsync();
                    Assert.True(body.AsSpan().SequenceEqual(echoed), $"request {request}: echoed body differs ({echoed.Length} of {body.Length} bytes)");
                    Interlocked.Add(ref bytesEchoed, echoed.Length);
                }
            }

            await Task.WhenAll(Enumerable.Range(0, 8).Select(_ => Task.Run(Worker)));
        }

        HeapStats during = factory.Heap.Stats;
        await app.StopAsync();
        HeapStats after = factory.Heap.Stats;

        output.WriteLine($"{factory.Allocator.GetType().Name}: {Requests} requests, {bytesEchoed} bytes echoed; heap: {during.Allocations} allocations, {during.FailedAllocations} failed, {factory.PoolsCreated} pools; after stop {after.AllocatedBytes} bytes allocated");
        Assert.True(bytesEchoed > 20L << 20, $"echoed {bytesEchoed} bytes");
        Assert.True(factory.PoolsCreated > 0, "Kestrel asked the factory for its pools");
        Assert.True(during.Allocations > 1_000, $"the heap served the I/O: {during.Allocations} allocations");
        Assert.Equal(0ul, after.AllocatedBytes);
        Assert.Equal(0, after.LiveBlocks);
        if (factory.Allocator is LockedHeap locked)
        {
            locked.Validate();
        }
        else
        {
            Assert.IsType<ConcurrentHeap>(factory.Allocator).Validate();
        }
    }

    [Fact]
    public void AddBuddyMemoryPool_AfterKestrel_ReplacesItsFactory()
    {
        WebApplicationBuilder builder = WebApplication.CreateSlimBuilder();
        builder.Services.AddBuddyMemoryPool(options => options.HeapSize = 1 << 20);
        using ServiceProvider services = builder.Services.BuildServiceProvider();
        IMemoryPoolFactory<byte>[] factories = services.GetServices<IMemoryPoolFactory<byte>>().ToArray();
        BuddyMemoryPoolFactory factory = Assert.IsType<BuddyMemoryPoolFactory>(Assert.Single(factories));
        Assert.Equal(1ul << 20, factory.Heap.Stats.TotalBytes);

        using MemoryPool<byte> pool = factory.Create(new MemoryPoolOptions());
        Assert.IsType<BuddyMemoryPool>(pool);
        using (IMemoryOwner<byte> owner = pool.Rent())
        {
            Assert.Equal(4096, owner.Memory.Length);
        }

        Assert.Equal(0ul, factory.Heap.Stats.AllocatedBytes);
    }

    // Every 50th body is exactly 1 MiB; the rest spread over 0 B .. 256 KiB on a log scale (most small, as in real traffic),
    // which keeps the run short on a busy machine.
    private static byte[] BodyFor(int request)
    {
        var random = new Random(request);
        int size = request % 50 == 0 ? MaxBody : (1 << random.Next(18)) - 1 + random.Next(1024);
        var body = new byte[size];
        random.NextBytes(body);
        return body;
    }
}
