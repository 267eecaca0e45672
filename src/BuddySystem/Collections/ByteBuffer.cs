using System.Buffers;

namespace BuddySystem.Collections;

/// <summary>
/// A growable byte buffer in memory from an <see cref="IAllocator"/> that writers such as
/// <see cref="System.Text.Json.Utf8JsonWriter"/> can fill through <see cref="IBufferWriter{T}"/>: Rust's <c>Vec&lt;u8&gt;</c>
/// used as an <c>io::Write</c> sink (or <c>bytes::BytesMut</c>).
/// </summary>
/// <remarks>
/// <para>A thin layer over <see cref="Vec{T}"/> of bytes: <see cref="GetSpan"/> reserves room (growing by doubling through
/// <see cref="IAllocator.Reallocate"/>) and <see cref="Advance"/> counts what was written. As the
/// <see cref="IBufferWriter{T}"/> contract says, memory from <see cref="GetSpan"/> or <see cref="GetMemory"/> is valid only
/// until the next call that writes or grows.</para>
/// <para>When the allocator returns null, <see cref="GetSpan"/> and <see cref="GetMemory"/> throw
/// <see cref="HeapExhaustedException"/> and the bytes written so far are kept. Thread safety: none. Dispose twice is harmless;
/// any other use after <see cref="Dispose"/> throws <see cref="ObjectDisposedException"/>.</para>
/// </remarks>
public sealed class ByteBuffer : IBufferWriter<byte>, IDisposable
{
    private readonly Vec<byte> _bytes;
    private readonly SpareMemory _spare;

    /// <summary>Creates an empty buffer, or one with room for <paramref name="capacity"/> bytes.</summary>
    /// <param name="allocator">Where the bytes live.</param>
    /// <param name="capacity">Bytes to make room for now; zero allocates nothing.</param>
    /// <exception cref="ArgumentNullException"><paramref name="allocator"/> is null.</exception>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="capacity"/> is negative.</exception>
    /// <exception cref="HeapExhaustedException">The allocator could not serve the capacity.</exception>
    public ByteBuffer(IAllocator allocator, int capacity = 0)
    {
        _bytes = new Vec<byte>(allocator, capacity);
        _spare = new SpareMemory(_bytes);
    }

    /// <summary>Bytes written.</summary>
    public int WrittenCount => _bytes.Count;

    /// <summary>Bytes the buffer holds without growing.</summary>
    public int Capacity => _bytes.Capacity;

    /// <summary>The bytes written, over the native buffer; valid until the buffer grows or is disposed.</summary>
    public ReadOnlySpan<byte> WrittenSpan => _bytes.AsSpan();

    /// <summary>Appends <paramref name="bytes"/> (<c>extend_from_slice</c>).</summary>
    /// <param name="bytes">The bytes.</param>
    /// <exception cref="HeapExhaustedException">The buffer could not grow; nothing was written.</exception>
    public void Write(ReadOnlySpan<byte> bytes)
    {
        bytes.CopyTo(GetSpan(bytes.Length));
        Advance(bytes.Length);
    }

    /// <summary>Counts <paramref name="count"/> bytes written into the last span or memory handed out.</summary>
    /// <param name="count">Bytes written; at most the length handed out.</param>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="count"/> is negative or beyond the room reserved.</exception>
    public void Advance(int count) => _bytes.CommitSpare(count);

    /// <summary>Room for at least <paramref name="sizeHint"/> bytes (at least one when 0), as native memory.</summary>
    /// <param name="sizeHint">Bytes wanted; 0 for "some".</param>
    /// <returns>Memory over the spare room.</returns>
    /// <exception cref="HeapExhaustedException">The buffer could not grow; what was written is kept.</exception>
    public Memory<byte> GetMemory(int sizeHint = 0)
    {
        int length = GetSpan(sizeHint).Length;
        return _spare.CreateMemory(length);
    }

    /// <summary>Room for at least <paramref name="sizeHint"/> bytes (at least one when 0).</summary>
    /// <param name="sizeHint">Bytes wanted; 0 for "some".</param>
    /// <returns>A span over the spare room.</returns>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="sizeHint"/> is negative.</exception>
    /// <exception cref="HeapExhaustedException">The buffer could not grow; what was written is kept.</exception>
    public Span<byte> GetSpan(int sizeHint = 0)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(sizeHint);
        _bytes.Reserve(Math.Max(sizeHint, 1));
        return _bytes.SpareCapacity();
    }

    /// <summary>Forgets the bytes written and keeps the room (<c>clear</c>).</summary>
    public void Clear() => _bytes.Clear();

    /// <summary>Frees the buffer. Calling it again is harmless.</summary>
    public void Dispose() => _bytes.Dispose();

    /// <summary>Memory over the vector's spare room, so <see cref="GetMemory"/> needs no allocation per call beyond the first.</summary>
    private sealed unsafe class SpareMemory(Vec<byte> bytes) : MemoryManager<byte>
    {
        public new Memory<byte> CreateMemory(int length) => base.CreateMemory(length);

        public override Span<byte> GetSpan() => bytes.SpareCapacity();

        public override MemoryHandle Pin(int elementIndex = 0)
        {
            Span<byte> spare = bytes.SpareCapacity();
            ArgumentOutOfRangeException.ThrowIfGreaterThan((uint)elementIndex, (uint)spare.Length, nameof(elementIndex));

            // Native memory never moves: the handle only carries the address.
            return new MemoryHandle((byte*)bytes.Pointer + bytes.Count + elementIndex);
        }

        public override void Unpin()
        {
        }

        protected override void Dispose(bool disposing)
        {
        }
    }
}
