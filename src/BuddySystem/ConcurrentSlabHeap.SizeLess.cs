using BuddySystem.Internals;

namespace BuddySystem;

public sealed unsafe partial class ConcurrentSlabHeap
{
    /// <summary>
    /// Frees a block without its layout, as C's <c>free(p)</c>: the object's class is read from its state byte (a large
    /// block's length from the page map), so no per-allocation header is needed. Safe from any thread.
    /// </summary>
    /// <param name="ptr">A live block of this heap.</param>
    /// <exception cref="ArgumentNullException"><paramref name="ptr"/> is null.</exception>
    /// <exception cref="ArgumentException"><paramref name="ptr"/> is outside every region or not the start of a block; the heap is unchanged.</exception>
    /// <exception cref="InvalidOperationException">The block is not allocated (a double free); the heap is unchanged.</exception>
    /// <exception cref="ObjectDisposedException">The heap was disposed.</exception>
    /// <remarks>The user-byte counter of <see cref="Stats"/> is charged the whole block for such a free (the requested
    /// size is not known); the other counters are exact. Misuse is caught as by <see cref="Deallocate(void*, Layout)"/>.</remarks>
    public void Deallocate(void* ptr) => Deallocate(ptr, LayoutOfLiveBlock(ptr));

    /// <summary>The bytes usable in a live block: its class size, or a large block's kept length.</summary>
    /// <param name="ptr">A live block of this heap.</param>
    /// <returns>The block's size in bytes (at least the size it was allocated with).</returns>
    /// <exception cref="ArgumentNullException"><paramref name="ptr"/> is null.</exception>
    /// <exception cref="ArgumentException"><paramref name="ptr"/> is outside every region or not the start of a block.</exception>
    /// <exception cref="InvalidOperationException">The block is not allocated.</exception>
    /// <exception cref="ObjectDisposedException">The heap was disposed.</exception>
    public nuint UsableSize(void* ptr) => LayoutOfLiveBlock(ptr).Size;

    /// <summary>A layout that maps to the live block at <paramref name="ptr"/>, read without the lock from its state byte;
    /// anything else is checked under the lock, which throws naming the address.</summary>
    internal Layout LayoutOfLiveBlock(void* ptr)
    {
        ulong address = (ulong)ptr;
        Region[] regions = Volatile.Read(ref _regions);
        int index = (address & 15) == 0 ? Regions.Find(regions, address) : -1;
        if (index >= 0)
        {
            byte state = regions[index].StateBase[address >> GranuleShift];
            if (state != 0 && state <= SizeClasses.Count)
            {
                return new Layout(SizeClasses.SizeOf(state - 1), 1);
            }
        }

        lock (_lock)
        {
            ThrowIfDisposed();
            nint entry = CheckLiveBlockLocked(ptr, new Layout(BuddyHeap.MinBlockSize, 1), out _, checkLayout: false);
            return (entry & 1) != 0 ? new Layout((nuint)((ulong)entry >> 1), LargeAlign) : new Layout(((Slab*)entry)->ObjectSize, 1);
        }
    }

    /// <summary>Takes the heap's lock and keeps it until <see cref="ExitAfterFork"/> (<c>pthread_atfork</c>'s prepare handler).</summary>
    internal void EnterForFork() => _lock.Enter();

    /// <summary>Releases the lock taken by <see cref="EnterForFork"/>.</summary>
    internal void ExitAfterFork() => _lock.Exit();
}
