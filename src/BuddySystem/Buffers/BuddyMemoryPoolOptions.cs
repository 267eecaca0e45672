namespace BuddySystem.Buffers;

/// <summary>Settings of a <see cref="BuddyMemoryPool"/>.</summary>
/// <remarks>Defaults: <see cref="DefaultBufferSize"/> 4096 bytes (what <c>Rent(-1)</c> gives, the page size Pipelines and
/// Kestrel use as their segment size), <see cref="MaxBufferSize"/> 1 MiB, <see cref="RecycledOwners"/> 1024.</remarks>
public sealed class BuddyMemoryPoolOptions
{
    /// <summary>Bytes of the buffer <c>Rent(-1)</c> returns; rounded up to a power of two. Default 4096.</summary>
    public int DefaultBufferSize { get; set; } = 4096;

    /// <summary>The largest buffer to hand out; rounded down to a power of two, and never above what the heap can hold. Default 1 MiB.</summary>
    /// <remarks>Pipelines asks the pool only for sizes up to <see cref="System.Buffers.MemoryPool{T}.MaxBufferSize"/> and takes larger
    /// segments from <see cref="System.Buffers.ArrayPool{T}"/>, so this is also the ceiling of what the heap serves a pipe.</remarks>
    public int MaxBufferSize { get; set; } = 1 << 20;

    /// <summary>How many disposed buffer owners the pool keeps, beyond each thread's own 128, to hand out again, so that
    /// renting allocates no managed memory. Default 1024; 0 gives every rent a new owner.</summary>
    /// <remarks>
    /// <para>An owner is handed out again only after 64 other buffers were returned after it on the thread that returned it:
    /// until then the owner (and any <see cref="Memory{T}"/> taken from it) throws <see cref="ObjectDisposedException"/>. A use
    /// after dispose later than that reaches another renter's buffer, as with <see cref="System.Buffers.ArrayPool{T}"/>; a
    /// second <c>Dispose</c> that late returns that renter's block. Set 0 while hunting such a bug: then every use after
    /// dispose throws, at the price of one owner object (48 bytes of GC heap) per rent.</para>
    /// <para>An owner costs 48 bytes; the blocks always go back to the heap at once. A thread keeps rings for up to 4 pools.</para>
    /// </remarks>
    public int RecycledOwners { get; set; } = 1024;
}
