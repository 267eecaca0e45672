namespace BuddySystem;

/// <summary>
/// The allocation contract of Rust's <c>GlobalAlloc</c> trait: hand out a block of at least
/// <see cref="Layout.Size"/> bytes aligned to <see cref="Layout.Align"/>, and take it back.
/// </summary>
/// <remarks>
/// <para><see cref="Allocate"/> returns <see langword="null"/> when the request cannot be served (the heap is
/// exhausted or too fragmented); it never throws for that. Typed fronts such as
/// <see cref="Collections.Box{T}"/> turn <see langword="null"/> into a <see cref="HeapExhaustedException"/>.</para>
/// <para>Thread safety is stated by each implementation, and declared by <see cref="IsThreadSafe"/>.</para>
/// </remarks>
public unsafe interface IAllocator
{
    /// <summary>Whether every member may be called from any number of threads at once.</summary>
    /// <remarks>Defaults to <see langword="false"/>: an allocator is single-threaded unless it declares otherwise.
    /// <see cref="LockedHeap"/> and <see cref="ConcurrentHeap"/> declare <see langword="true"/>; <see cref="BuddyHeap"/> and
    /// <see cref="SlabHeap"/> <see langword="false"/>. Fronts used from any thread, such as
    /// <see cref="Buffers.BuddyMemoryPool"/>, accept only an allocator that declares <see langword="true"/>, and the
    /// reliability kit's stress run covers exactly those engines.</remarks>
    bool IsThreadSafe => false;

    /// <summary>Allocates a block for <paramref name="layout"/>.</summary>
    /// <param name="layout">Size and alignment wanted. A zero size still yields a valid, unique block.</param>
    /// <returns>The block's address, aligned to <see cref="Layout.Align"/>; <see langword="null"/> when the request cannot be served.</returns>
    void* Allocate(Layout layout);

    /// <summary>Returns a block obtained from <see cref="Allocate"/> of the same allocator.</summary>
    /// <param name="ptr">The address <see cref="Allocate"/> returned.</param>
    /// <param name="layout">The layout passed to <see cref="Allocate"/> for this block (or the last <see cref="Reallocate"/>).</param>
    /// <exception cref="ArgumentException">Implementations that check say so: <paramref name="ptr"/> is not a live block of this allocator, or <paramref name="layout"/> does not match it.</exception>
    /// <exception cref="InvalidOperationException">Implementations that check say so: the block was already freed.</exception>
    void Deallocate(void* ptr, Layout layout);

    /// <summary>
    /// Resizes a block to <paramref name="newSize"/> bytes with the same alignment, moving it when needed
    /// (Rust's <c>GlobalAlloc::realloc</c>).
    /// </summary>
    /// <param name="ptr">A live block of this allocator.</param>
    /// <param name="layout">The block's current layout.</param>
    /// <param name="newSize">The new size in bytes.</param>
    /// <returns>The block's new address, holding the first <c>min(old, new)</c> bytes of the old one; or
    /// <see langword="null"/> when no block could be found, in which case the old block is untouched and still live.</returns>
    /// <remarks>The default allocates a new block, copies, and frees the old one. Engines override it to resize in place where they can.</remarks>
    void* Reallocate(void* ptr, Layout layout, nuint newSize) => Internals.Moves.AllocateCopyFree(this, ptr, layout, newSize);
}
