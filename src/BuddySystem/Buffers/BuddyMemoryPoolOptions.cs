namespace BuddySystem.Buffers;

/// <summary>Settings of a <see cref="BuddyMemoryPool"/>.</summary>
/// <remarks>Defaults: <see cref="DefaultBufferSize"/> 4096 bytes (what <c>Rent(-1)</c> gives, the page size Pipelines and
/// Kestrel use as their segment size), <see cref="MaxBufferSize"/> 1 MiB, <see cref="RecycledOwners"/> 0 (an owner per rent:
/// a late second <c>Dispose</c> can never return another renter's buffer).</remarks>
public sealed class BuddyMemoryPoolOptions
{
    /// <summary>Bytes of the buffer <c>Rent(-1)</c> returns; rounded up to a power of two. Default 4096.</summary>
    public int DefaultBufferSize { get; set; } = 4096;

    /// <summary>The largest buffer to hand out; rounded down to a power of two, and never above what the heap can hold. Default 1 MiB.</summary>
    /// <remarks>Pipelines asks the pool only for sizes up to <see cref="System.Buffers.MemoryPool{T}.MaxBufferSize"/> and takes larger
    /// segments from <see cref="System.Buffers.ArrayPool{T}"/>, so this is also the ceiling of what the heap serves a pipe.</remarks>
    public int MaxBufferSize { get; set; } = 1 << 20;

    /// <summary>How many disposed buffer owners the pool keeps, beyond each thread's own 128, to hand out again, so that
    /// renting allocates no managed memory. Default 0: every rent gets a new owner (48 bytes of GC heap), so a use after
    /// dispose always throws <see cref="ObjectDisposedException"/> and a second <c>Dispose</c> always does nothing.</summary>
    /// <remarks>
    /// <para>Above 0 (1024 is a good figure for a server), an owner is handed out again only after 64 other buffers were
    /// returned after it on the thread that returned it: until then the owner (and any <see cref="Memory{T}"/> taken from it)
    /// throws <see cref="ObjectDisposedException"/>. Later than that, the owner object <i>is</i> another renter's: a use after
    /// dispose reaches that renter's buffer, as with <see cref="System.Buffers.ArrayPool{T}"/>, and a second <c>Dispose</c>
    /// returns that renter's block to the heap while the renter still uses it. No check can catch that (the stale
    /// reference and the new renter's are the same object), which is why it is not the default: turn it on only where every
    /// owner is disposed exactly once (a <c>using</c> plus an explicit <c>Dispose</c> is twice).</para>
    /// <para>An owner costs 48 bytes; the blocks always go back to the heap at once. A thread keeps rings for up to 4 pools.</para>
    /// </remarks>
    public int RecycledOwners { get; set; }
}
