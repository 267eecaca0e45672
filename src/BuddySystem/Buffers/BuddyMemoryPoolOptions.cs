namespace BuddySystem.Buffers;

/// <summary>Settings of a <see cref="BuddyMemoryPool"/>.</summary>
/// <remarks>Defaults: <see cref="DefaultBufferSize"/> 4096 bytes (what <c>Rent(-1)</c> gives, the page size Pipelines and
/// Kestrel use as their segment size), <see cref="MaxBufferSize"/> 1 MiB.</remarks>
public sealed class BuddyMemoryPoolOptions
{
    /// <summary>Bytes of the buffer <c>Rent(-1)</c> returns; rounded up to a power of two. Default 4096.</summary>
    public int DefaultBufferSize { get; set; } = 4096;

    /// <summary>The largest buffer to hand out; rounded down to a power of two, and never above what the heap can hold. Default 1 MiB.</summary>
    /// <remarks>Pipelines asks the pool only for sizes up to <see cref="System.Buffers.MemoryPool{T}.MaxBufferSize"/> and takes larger
    /// segments from <see cref="System.Buffers.ArrayPool{T}"/>, so this is also the ceiling of what the heap serves a pipe.</remarks>
    public int MaxBufferSize { get; set; } = 1 << 20;
}
