using System.Net;
using BuddySystem.KestrelBench;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.DependencyInjection;

namespace BuddySystem.AspNetCore.Tests;

// The documented policy under a full heap: the connection whose rent fails is aborted (not hung), the failure is counted,
// the server lives, and once memory is back it serves correctly and the heap validates.
public class KestrelOverloadTests
{
    [Theory]
    [InlineData("buddy-locked")]
    [InlineData("buddy-concurrent")]
    public async Task BenchServer_HeapFull_RequestAbortedCountedThenServedAgain(string poolName)
    {
        BenchPool pool = BenchPool.Find(poolName)!;
        await using WebApplication app = BenchServer.Build(pool, 1 << 20, "http://127.0.0.1:0");
        await app.StartAsync();
        string address = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.Single();
        var factory = app.Services.GetRequiredService<CountingMemoryPoolFactory>();
        IAllocator heap = factory.Inner.Allocator;
        var layout = new Layout(4096, 4096);
        var taken = new List<nint>();
        unsafe
        {
            for (void* block = heap.Allocate(layout); block != null; block = heap.Allocate(layout))
            {
                taken.Add((nint)block);
            }
        }

        Assert.NotEmpty(taken);
        byte[] expected = BenchServer.ExpectedBytes(100_000);
        var handler = new SocketsHttpHandler { UseProxy = false, PooledConnectionLifetime = TimeSpan.Zero };
        using (var client = new HttpClient(handler) { BaseAddress = new Uri(address), Timeout = TimeSpan.FromSeconds(20) })
        {
            Exception? failure = await Record.ExceptionAsync(async () =>
            {
                byte[] body = await client.GetByteArrayAsync(new Uri("/bytes/100000", UriKind.Relative));
                Assert.Equal(expected, body);
            });

            // An abort shows as a failed request, never a timeout (a hang) or a wrong body.
            Assert.False(failure is TaskCanceledException, "the request hung until the client's timeout");
            Assert.True(failure is null or HttpRequestException, $"unexpected {failure}");
            if (poolName == "buddy-locked")
            {
                // A LockedHeap has no per-thread caches: the test took every free block, so Kestrel's first rent fails.
                Assert.IsType<HttpRequestException>(failure);
                Assert.True(factory.FailedRents > 0, "the failed rent was counted");
            }
        }

        unsafe
        {
            foreach (nint block in taken)
            {
                heap.Deallocate((void*)block, layout);
            }
        }

        using (var client = new HttpClient(new SocketsHttpHandler { UseProxy = false }) { BaseAddress = new Uri(address), Timeout = TimeSpan.FromSeconds(20) })
        {
            for (int i = 0; i < 3; i++)
            {
                Assert.Equal(expected, await client.GetByteArrayAsync(new Uri("/bytes/100000", UriKind.Relative)));
            }
        }

        await app.StopAsync();
        pool.Validate!(heap);
        Assert.Equal(0ul, factory.Inner.Heap.Stats.AllocatedBytes);
    }
}
