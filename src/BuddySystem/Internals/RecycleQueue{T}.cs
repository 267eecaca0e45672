namespace BuddySystem.Internals;

/// <summary>
/// A bounded first-in first-out queue of objects to reuse, safe from any number of threads, that never allocates after
/// construction. Dmitry Vyukov's bounded MPMC queue: each cell carries a sequence number that says whose turn it is, so
/// producers and consumers each claim a position with one compare-exchange and never wait on each other.
/// </summary>
/// <remarks>First in, first out on purpose: an object comes back out only after every object queued before it, so the time
/// between giving an object up and handing it out again is as long as the queue can make it (see
/// <see cref="TryDequeue"/>'s <c>keep</c>).</remarks>
/// <typeparam name="T">The objects.</typeparam>
internal sealed class RecycleQueue<T>
    where T : class
{
    private readonly Cell[] _cells;
    private readonly long _mask;
    private QueuePositions _positions;

    /// <summary>Creates an empty queue of <paramref name="capacity"/> objects, rounded up to a power of two.</summary>
    public RecycleQueue(int capacity)
    {
        int size = (int)System.Numerics.BitOperations.RoundUpToPowerOf2((uint)Math.Max(capacity, 2));
        _cells = new Cell[size];
        _mask = size - 1;
        for (int i = 0; i < size; i++)
        {
            _cells[i].Sequence = i;
        }
    }

    /// <summary>Objects in the queue now (approximate while other threads use it).</summary>
    public long Count => Math.Max(0, Volatile.Read(ref _positions.Enqueue) - Volatile.Read(ref _positions.Dequeue));

    /// <summary>Adds <paramref name="item"/> at the tail; false when the queue is full.</summary>
    public bool TryEnqueue(T item)
    {
        long position = Volatile.Read(ref _positions.Enqueue);
        while (true)
        {
            ref Cell cell = ref _cells[position & _mask];
            long turn = Volatile.Read(ref cell.Sequence) - position;
            if (turn == 0)
            {
                if (Interlocked.CompareExchange(ref _positions.Enqueue, position + 1, position) == position)
                {
                    cell.Item = item;
                    Volatile.Write(ref cell.Sequence, position + 1);
                    return true;
                }
            }
            else if (turn < 0)
            {
                return false;
            }

            position = Volatile.Read(ref _positions.Enqueue);
        }
    }

    /// <summary>Takes the object at the head, but only while more than <paramref name="keep"/> objects are queued: the newest
    /// <paramref name="keep"/> stay put, so an object is handed out again only after at least that many others came in after it.</summary>
    public bool TryDequeue(int keep, [System.Diagnostics.CodeAnalysis.NotNullWhen(true)] out T? item)
    {
        long position = Volatile.Read(ref _positions.Dequeue);
        while (Volatile.Read(ref _positions.Enqueue) - position > keep)
        {
            ref Cell cell = ref _cells[position & _mask];
            long turn = Volatile.Read(ref cell.Sequence) - (position + 1);
            if (turn == 0)
            {
                if (Interlocked.CompareExchange(ref _positions.Dequeue, position + 1, position) == position)
                {
                    item = cell.Item!;
                    cell.Item = null;
                    Volatile.Write(ref cell.Sequence, position + _mask + 1);
                    return true;
                }
            }
            else if (turn < 0)
            {
                break;
            }

            position = Volatile.Read(ref _positions.Dequeue);
        }

        item = null;
        return false;
    }

    private struct Cell
    {
        public long Sequence;
        public T? Item;
    }
}
