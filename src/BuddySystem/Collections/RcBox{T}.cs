namespace BuddySystem.Collections;

/// <summary>The native block behind <see cref="Rc{T}"/> and <see cref="Arc{T}"/>: the count sits beside the value, as in Rust's <c>RcBox</c>/<c>ArcInner</c>.</summary>
/// <typeparam name="T">The shared value's type.</typeparam>
internal struct RcBox<T> where T : unmanaged
{
    /// <summary>Handles alive; the block is freed when it reaches zero.</summary>
    public long Strong;

    /// <summary>The shared value.</summary>
    public T Value;

    /// <summary>Allocates the block from <paramref name="allocator"/> with a count of one and <paramref name="value"/> stored.</summary>
    /// <exception cref="HeapExhaustedException">The allocator returned null.</exception>
    public static unsafe RcBox<T>* Create(IAllocator allocator, T value)
    {
        Layout layout = Layout.Of<RcBox<T>>();
        var box = (RcBox<T>*)allocator.Allocate(layout);
        if (box == null)
        {
            throw HeapExhaustedException.For(allocator, layout);
        }

        box->Strong = 1;
        box->Value = value;
        return box;
    }
}
