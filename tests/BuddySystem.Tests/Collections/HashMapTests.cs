using BuddySystem.Collections;

namespace BuddySystem.Tests;

public class HashMapTests
{
    [Fact]
    public void HashMap_RandomOperations_MatchDictionary()
    {
        using var heap = BuddyHeap.Create(1 << 20);
        using (var map = new HashMap<int, long>(heap))
        {
            var model = new Dictionary<int, long>();
            var random = new Random(0x5EED);
            for (int step = 0; step < 50_000; step++)
            {
                // Keys from a small range so removes and overwrites hit often and probe runs collide.
                int key = random.Next(2_000) * (random.Next(2) == 0 ? 1 : 4096);
                long value = random.NextInt64();
                switch (random.Next(5))
                {
                    case 0:
                    case 1:
                        Assert.Equal(model.TryAdd(key, value), map.TryAdd(key, value));
                        break;
                    case 2:
                        Assert.Equal(model.Remove(key), map.Remove(key));
                        break;
                    case 3:
                        map[key] = value;
                        model[key] = value;
                        break;
                    default:
                        Assert.Equal(model.TryGetValue(key, out long expected), map.TryGetValue(key, out long actual));
                        Assert.Equal(expected, actual);
                        break;
                }
            }

            Assert.Equal(model.Count, map.Count);
            var seen = new Dictionary<int, long>();
            foreach (KeyValuePair<int, long> entry in map)
            {
                seen.Add(entry.Key, entry.Value);
            }

            Assert.Equal(model.OrderBy(e => e.Key), seen.OrderBy(e => e.Key));
            heap.Validate();
        }

        Assert.Equal(0ul, heap.Stats.AllocatedBytes);
    }

    [Fact]
    public void HashMap_Indexer_MissingKeyThrowsAndSetOverwrites()
    {
        using var heap = BuddyHeap.Create(4096);
        using var map = new HashMap<long, int>(heap);
        Assert.Throws<KeyNotFoundException>(() => map[5]);
        map[5] = 1;
        map[5] = 2;
        Assert.False(map.TryAdd(5, 3));
        Assert.Equal(2, map[5]);
        Assert.Equal(1, map.Count);
        Assert.True(map.ContainsKey(5));
        map.Clear();
        Assert.False(map.ContainsKey(5));
        Assert.Equal(0, map.Count);
    }

    [Fact]
    public void HashMap_Growth_KeepsEveryEntry()
    {
        using var heap = BuddyHeap.Create(1 << 20);
        using var map = new HashMap<int, int>(heap);
        for (int i = 0; i < 10_000; i++)
        {
            Assert.True(map.TryAdd(i, -i));
        }

        Assert.True(map.Capacity >= 10_000);
        for (int i = 0; i < 10_000; i++)
        {
            Assert.Equal(-i, map[i]);
        }

        // Only the current table is live: the old ones went back to the heap as the map grew.
        Assert.Equal(1, heap.Stats.LiveBlocks);
    }

    [Fact]
    public void HashMap_EnumerateWhileChanging_Throws()
    {
        using var heap = BuddyHeap.Create(4096);
        using var map = new HashMap<int, int>(heap);
        map[1] = 1;
        map[2] = 2;
        Assert.Throws<InvalidOperationException>(() =>
        {
            foreach (KeyValuePair<int, int> entry in map)
            {
                map.Remove(entry.Key);
            }
        });
    }

    [Fact]
    public void HashMap_Enumerate_AllocatesNothingOnGcHeap()
    {
        using var heap = BuddyHeap.Create(1 << 16);
        using var map = new HashMap<int, int>(heap);
        for (int i = 0; i < 100; i++)
        {
            map[i] = i;
        }

        long sum = SumValues(map);
        long before = GC.GetAllocatedBytesForCurrentThread();
        sum += SumValues(map);
        long after = GC.GetAllocatedBytesForCurrentThread();
        Assert.Equal(0, after - before);
        Assert.Equal(2 * 4950, sum);
    }

    [Fact]
    public void HashMap_HeapExhausted_ThrowsKeepsEntriesAndHeapStaysValid()
    {
        using var heap = BuddyHeap.Create(4096);
        using var map = new HashMap<int, int>(heap);
        int added = 0;
        Assert.Throws<HeapExhaustedException>((Action)(() =>
        {
            while (true)
            {
                map[added] = added * 3;
                added++;
            }
        }));
        Assert.True(added > 0);
        Assert.Equal(added, map.Count);
        for (int i = 0; i < added; i++)
        {
            Assert.Equal(i * 3, map[i]);
        }

        heap.Validate();
        map.Dispose();
        Assert.Equal(0ul, heap.Stats.AllocatedBytes);
    }

    [Fact]
    public void HashMap_AfterDispose_ThrowsObjectDisposed()
    {
        using var heap = BuddyHeap.Create(4096);
        var map = new HashMap<int, int>(heap, 10);
        map.Dispose();
        map.Dispose();
        Assert.Throws<ObjectDisposedException>(() => map.Count);
        Assert.Throws<ObjectDisposedException>(() => map.TryAdd(1, 1));
        Assert.Throws<ObjectDisposedException>(() => map[1]);
        Assert.Equal(0ul, heap.Stats.AllocatedBytes);
    }

    private static long SumValues(HashMap<int, int> map)
    {
        long sum = 0;
        foreach (KeyValuePair<int, int> entry in map)
        {
            sum += entry.Value;
        }

        return sum;
    }
}
