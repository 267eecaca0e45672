using System.Buffers;
using System.IO.Pipelines;
using BuddySystem.Buffers;
using BuddySystem.Collections;
using BuddySystem.Diagnostics;

namespace BuddySystem.Tests;

/// <summary>The README's quick start and ".NET integrations" snippets, run as written, so the README stays true.</summary>
public class ReadmeIntegrationsTests
{
    [Fact]
    public unsafe void Readme_QuickStart_RunsOnTheDefaultHeapAndFreesEverything()
    {
        using var heap = ConcurrentHeap.Create(8 << 20);
        using (var value = new Box<int>(heap, 5))
        using (var vec = new Vec<int>(heap))
        {
            for (int i = 0; i < 500; i++) vec.Push(i);
            Assert.Equal(5, value.Value);
            Assert.Equal(499, vec[499]);
        }

        void* block = heap.Allocate(new Layout(100, 8));
        Assert.True(block != null);
        heap.Deallocate(block, new Layout(100, 8));
        Assert.Throws<InvalidOperationException>(() => heap.Deallocate(block, new Layout(100, 8)));
        Assert.NotEmpty(heap.Stats.FreeBlocksByOrder);
        Assert.Equal(0ul, heap.Stats.AllocatedBytes);
        heap.Validate();
    }

    [Fact]
    public void Readme_ContainersSnippet_RunsAndFreesEverything()
    {
        using var heap = LockedHeap.Create(1 << 20);
        using (var shared = new Arc<long>(heap, 0))
        {
            Parallel.For(0, 4, _ => { using var mine = shared.Clone(); unsafe { Interlocked.Increment(ref *mine.Pointer); } });
            using var one = new Rc<int>(heap, 7);
            using var map = new HashMap<int, long>(heap);
            map.TryAdd(1, 10); map[2] = 20;
            long sum = 0;
            foreach (var (key, value) in map) sum += key * value;
            using var bytes = new ByteBuffer(heap);
            using (var json = new System.Text.Json.Utf8JsonWriter(bytes)) json.WriteNumberValue(shared.Value);

            Assert.Equal(4, shared.Value);
            Assert.Equal(50, sum);
            Assert.Equal("4"u8.ToArray(), bytes.WrittenSpan.ToArray());
        }

        Assert.Equal(0ul, heap.Stats.AllocatedBytes);
    }

    [Fact]
    public void Readme_PoolSnippet_RentsFromTheHeap()
    {
        using var heap = ConcurrentHeap.Create(16 << 20);
        using (var pool = new BuddyMemoryPool(heap))
        {
            var pipe = new Pipe(new PipeOptions(pool: pool));
            using IMemoryOwner<byte> buffer = pool.Rent(5000);
            Assert.Equal(8192, buffer.Memory.Length);
            pipe.Writer.GetMemory(1);
            Assert.Equal(2, pool.RentedBuffers);
            pipe.Writer.Complete();
            pipe.Reader.Complete();
        }

        using IDisposable registration = BuddyMetrics.Register(heap, "frames");
        Assert.Equal(0ul, heap.Stats.AllocatedBytes);
    }
}
