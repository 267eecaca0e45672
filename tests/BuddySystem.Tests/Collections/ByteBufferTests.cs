using System.Text;
using System.Text.Json;
using BuddySystem.Collections;

namespace BuddySystem.Tests;

public class ByteBufferTests
{
    [Fact]
    public void ByteBuffer_Utf8JsonWriter_WritesDocumentIntoHeap()
    {
        using var heap = BuddyHeap.Create(1 << 20);
        using (var buffer = new ByteBuffer(heap))
        {
            using (var json = new Utf8JsonWriter(buffer))
            {
                json.WriteStartObject();
                json.WriteString("allocator", "buddy");
                json.WriteStartArray("orders");
                for (int order = 0; order < 1000; order++)
                {
                    json.WriteNumberValue(16L << (order % 20));
                }

                json.WriteEndArray();
                json.WriteEndObject();
            }

            using JsonDocument document = JsonDocument.Parse(buffer.WrittenSpan.ToArray());
            Assert.Equal("buddy", document.RootElement.GetProperty("allocator").GetString());
            Assert.Equal(1000, document.RootElement.GetProperty("orders").GetArrayLength());
            Assert.Equal(1, heap.Stats.LiveBlocks);
        }

        Assert.Equal(0ul, heap.Stats.AllocatedBytes);
        heap.Validate();
    }

    [Fact]
    public void ByteBuffer_GetMemoryThenAdvance_AppendsBytes()
    {
        using var heap = BuddyHeap.Create(4096);
        using var buffer = new ByteBuffer(heap);
        buffer.Write("abc"u8);
        Memory<byte> memory = buffer.GetMemory(3);
        Assert.True(memory.Length >= 3);
        "def"u8.CopyTo(memory.Span);
        buffer.Advance(3);
        Assert.Equal("abcdef", Encoding.ASCII.GetString(buffer.WrittenSpan));
        Assert.Throws<ArgumentOutOfRangeException>(() => buffer.Advance(buffer.Capacity));
        buffer.Clear();
        Assert.Equal(0, buffer.WrittenCount);
    }

    [Fact]
    public void ByteBuffer_HeapExhausted_ThrowsKeepsBytesAndHeapStaysValid()
    {
        using var heap = BuddyHeap.Create(1024);
        var buffer = new ByteBuffer(heap);
        buffer.Write(new byte[500]);
        Assert.Throws<HeapExhaustedException>(() => buffer.GetSpan(2000));
        Assert.Equal(500, buffer.WrittenCount);
        heap.Validate();
        buffer.Dispose();
        buffer.Dispose();
        Assert.Throws<ObjectDisposedException>(() => buffer.WrittenCount);
        Assert.Equal(0ul, heap.Stats.AllocatedBytes);
    }
}
