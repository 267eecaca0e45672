using System.IO.Pipelines;
using BuddySystem.Buffers;

namespace BuddySystem.Tests;

public class BuddyMemoryPoolPipeTests
{
    public static TheoryData<string> Heaps => ["LockedHeap", "ConcurrentHeap"];

    [Theory]
    [MemberData(nameof(Heaps))]
    public async Task Pipe_256MiBThroughPool_ContentVerifiedAndHeapIdleAfter(string kind)
    {
        const long Total = 256L << 20;
        using IDisposable owner = kind == "LockedHeap" ? LockedHeap.Create(16 << 20) : ConcurrentHeap.Create(16 << 20);
        var heap = (IAllocator)owner;
        var stats = (IHeapStatsSource)owner;
        using var pool = new BuddyMemoryPool(heap);
        var pipe = new Pipe(new PipeOptions(pool: pool, pauseWriterThreshold: 1 << 20, resumeWriterThreshold: 512 << 10, useSynchronizationContext: false));

        Task writer = Task.Run(async () =>
        {
            long written = 0;
            var random = new Random(7);
            while (written < Total)
            {
                // Ragged sizes so segment boundaries fall everywhere; some hints above 4 KiB ask the pool for larger blocks.
                int chunk = (int)Math.Min(Total - written, random.Next(1, 48 << 10));
                Memory<byte> memory = pipe.Writer.GetMemory(chunk);
                Fill(memory.Span[..chunk], written);
                pipe.Writer.Advance(chunk);
                written += chunk;
                FlushResult flush = await pipe.Writer.FlushAsync();
                Assert.False(flush.IsCanceled);
            }

            await pipe.Writer.CompleteAsync();
        });

        long read = 0;
        long mismatches = 0;
        while (true)
        {
            ReadResult result = await pipe.Reader.ReadAsync();
            foreach (ReadOnlyMemory<byte> segment in result.Buffer)
            {
                mismatches += Check(segment.Span, read);
                read += segment.Length;
            }

            pipe.Reader.AdvanceTo(result.Buffer.End);
            if (result.IsCompleted)
            {
                break;
            }
        }

        await pipe.Reader.CompleteAsync();
        await writer;

        Assert.Equal(Total, read);
        Assert.Equal(0, mismatches);
        HeapStats after = stats.Stats;
        Assert.True(after.Allocations > 0, "the pipe's segments came from the heap");
        Assert.Equal(0ul, after.AllocatedBytes);
        Assert.Equal(0, after.LiveBlocks);
        Assert.Equal(0, pool.RentedBuffers);
        if (owner is LockedHeap locked)
        {
            locked.Validate();
        }
        else
        {
            ((ConcurrentHeap)owner).Validate();
        }
    }

    [Theory]
    [MemberData(nameof(Heaps))]
    public void Rent_ManyThreadsAtOnce_EveryBufferPrivateAndHeapIdleAfter(string kind)
    {
        using IDisposable owner = kind == "LockedHeap" ? LockedHeap.Create(8 << 20) : ConcurrentHeap.Create(8 << 20);
        using var pool = new BuddyMemoryPool((IAllocator)owner);
        long corrupted = 0;
        Parallel.For(0, 8, worker =>
        {
            var random = new Random(worker);
            for (int i = 0; i < 5_000; i++)
            {
                using System.Buffers.IMemoryOwner<byte> buffer = pool.Rent(random.Next(-1, 20_000));
                Span<byte> span = buffer.Memory.Span;
                span.Fill((byte)worker);

                // Another thread writing into this block would show up here.
                if (span.IndexOfAnyExcept((byte)worker) >= 0)
                {
                    Interlocked.Increment(ref corrupted);
                }
            }
        });

        Assert.Equal(0, corrupted);
        Assert.Equal(0, pool.RentedBuffers);
        Assert.Equal(0ul, ((IHeapStatsSource)owner).Stats.AllocatedBytes);
    }

    internal static byte PatternAt(long position) => (byte)(position ^ (position >> 8) ^ (position >> 16) ^ (position >> 24));

    private static void Fill(Span<byte> span, long position)
    {
        for (int i = 0; i < span.Length; i++)
        {
            span[i] = PatternAt(position + i);
        }
    }

    private static long Check(ReadOnlySpan<byte> span, long position)
    {
        long mismatches = 0;
        for (int i = 0; i < span.Length; i++)
        {
            if (span[i] != PatternAt(position + i))
            {
                mismatches++;
            }
        }

        return mismatches;
    }
}
