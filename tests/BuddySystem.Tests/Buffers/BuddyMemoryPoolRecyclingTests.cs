using System.Buffers;
using BuddySystem.Buffers;

namespace BuddySystem.Tests;

/// <summary>By default every rent gets an owner of its own, so a late second Dispose can never reach another renter's
/// buffer (issue 33). With <see cref="BuddyMemoryPoolOptions.RecycledOwners"/> on, the pool reuses disposed owners (issue 24:
/// 0 GC bytes per rent) without giving up the ObjectDisposedException of a use after dispose while the owner waits in
/// quarantine.</summary>
public class BuddyMemoryPoolRecyclingTests
{
    private static readonly BuddyMemoryPoolOptions s_recycling = new() { RecycledOwners = 1024 };

    [Fact]
    public void Rent_RecyclingOnAfterWarmUp_AllocatesNoManagedMemory()
    {
        using var pool = BuddyMemoryPool.Create(4 << 20, s_recycling);
        var live = new IMemoryOwner<byte>[8];

        // The same method warms up first: the runtime's own allocations (tiering, on-stack replacement) are not the pool's.
        for (int round = 0; round < 3; round++)
        {
            RentAndReturn(pool, live, 4096);
        }

        // The least of three rounds: the runtime may allocate on this thread now and then (seen once in 25 runs: 2 616 bytes
        // in one round), where a pool allocating per rent would show at least 24 bytes × 10 000 in every round.
        long least = long.MaxValue;
        for (int round = 0; round < 3; round++)
        {
            least = Math.Min(least, RentAndReturn(pool, live, 10_000));
        }

        Assert.Equal(0, least);
        foreach (IMemoryOwner<byte> owner in live)
        {
            owner.Dispose();
        }

        Assert.Equal(0, pool.RentedBuffers);
    }

    // Replaces the buffers of live round-robin; returns the managed bytes this thread allocated meanwhile.
    private static long RentAndReturn(BuddyMemoryPool pool, IMemoryOwner<byte>[] live, int count)
    {
        long before = GC.GetAllocatedBytesForCurrentThread();
        for (int i = 0; i < count; i++)
        {
            live[i % live.Length]?.Dispose();
            live[i % live.Length] = pool.Rent(256 << (i % 5));
            live[i % live.Length].Memory.Span[0] = 1;
        }

        return GC.GetAllocatedBytesForCurrentThread() - before;
    }

    [Fact]
    public void Owner_RecyclingOnDisposedThenFewerReturnsThanQuarantine_StillThrowsAndIsNotHandedOut()
    {
        using var pool = BuddyMemoryPool.Create(4 << 20, s_recycling);
        IMemoryOwner<byte> stale = pool.Rent();
        Memory<byte> staleMemory = stale.Memory;
        stale.Dispose();

        // Fewer returns after it than the quarantine of 64.
        var seen = new HashSet<IMemoryOwner<byte>>(ReferenceEqualityComparer.Instance);
        for (int i = 0; i < 63; i++)
        {
            IMemoryOwner<byte> owner = pool.Rent();
            seen.Add(owner);
            owner.Dispose();
        }

        Assert.DoesNotContain(stale, seen);
        Assert.Throws<ObjectDisposedException>(() => stale.Memory);
        Assert.Throws<ObjectDisposedException>(() => staleMemory.Span.Length);
        stale.Dispose();
        Assert.Equal(0, pool.RentedBuffers);
    }

    [Fact]
    public void Rent_RecyclingOff_EveryRentIsANewOwnerAndLateUseAlwaysThrows()
    {
        using var pool = BuddyMemoryPool.Create(4 << 20, new BuddyMemoryPoolOptions { RecycledOwners = 0 });
        IMemoryOwner<byte> first = pool.Rent();
        first.Dispose();
        var owners = new HashSet<IMemoryOwner<byte>>(ReferenceEqualityComparer.Instance) { first };
        for (int i = 0; i < 2000; i++)
        {
            IMemoryOwner<byte> owner = pool.Rent();
            Assert.True(owners.Add(owner));
            owner.Dispose();
        }

        Assert.Throws<ObjectDisposedException>(() => first.Memory);
    }

    [Fact]
    public void Owner_Recycled_GetsTheNewBlockAndLength()
    {
        using var heap = LockedHeap.Create(1 << 20);
        using var pool = new BuddyMemoryPool(heap, s_recycling);
        var owners = new List<IMemoryOwner<byte>>();

        // More returns than the quarantine of 64, so owners come back.
        for (int i = 0; i < 200; i++)
        {
            IMemoryOwner<byte> owner = pool.Rent(64 << (i % 4));
            Assert.Equal(64 << (i % 4), owner.Memory.Length);
            owner.Memory.Span.Fill((byte)i);
            Assert.All(owner.Memory.Span.ToArray(), b => Assert.Equal((byte)i, b));
            owners.Add(owner);
            owner.Dispose();
        }

        Assert.True(owners.Distinct(ReferenceEqualityComparer.Instance).Count() < owners.Count);
        Assert.Equal(0ul, heap.Stats.AllocatedBytes);
        heap.Validate();
    }

    [Theory]
    [InlineData(0)]
    [InlineData(1024)]
    public void OwnedHeap_PoolDisposedWhileThreadsRentAndReturn_FreedOnceAfterTheLastBuffer(int recycledOwners)
    {
        for (int round = 0; round < 20; round++)
        {
            var pool = BuddyMemoryPool.Create(8 << 20, new BuddyMemoryPoolOptions { RecycledOwners = recycledOwners });
            var heap = (ConcurrentHeap)pool.Allocator;
            using var start = new Barrier(5);
            var leftovers = new List<IMemoryOwner<byte>>[4];
            var workers = Enumerable.Range(0, 4).Select(t => TestThread.Create(() =>
            {
                var held = leftovers[t] = new List<IMemoryOwner<byte>>();
                start.SignalAndWait();
                for (int i = 0; i < 2000; i++)
                {
                    try
                    {
                        held.Add(pool.Rent(256 << (i % 6)));
                    }
                    catch (ObjectDisposedException)
                    {
                        break;
                    }

                    if (held.Count > 4)
                    {
                        held[0].Memory.Span[0] = 1;
                        held[0].Dispose();
                        held.RemoveAt(0);
                    }
                }

            })).ToArray();
            foreach (TestThread worker in workers)
            {
                worker.Start();
            }

            start.SignalAndWait();
            pool.Dispose();
            TestThread.JoinAll(workers);

            // Disposed pool, buffers still out: the heap lives and they stay usable.
            foreach (IMemoryOwner<byte> owner in leftovers.SelectMany(h => h))
            {
                owner.Memory.Span[^1] = 2;
            }

            Assert.Equal(leftovers.Sum(h => h.Count), pool.RentedBuffers);
            foreach (IMemoryOwner<byte> owner in leftovers.SelectMany(h => h))
            {
                owner.Dispose();
            }

            Assert.Equal(0, pool.RentedBuffers);
            Assert.Throws<ObjectDisposedException>(() => heap.Stats);
        }
    }

    [Fact]
    public void Rent_EveryReturnOnAnotherThread_OwnersComeBackThroughTheSharedStore()
    {
        using var pool = BuddyMemoryPool.Create(8 << 20, s_recycling);
        using var handOff = new System.Collections.Concurrent.BlockingCollection<IMemoryOwner<byte>>(boundedCapacity: 256);
        // The returner records which owners it disposed, in order, so the renter can tell a reused owner from a new one by
        // what the other thread did, not by its own count of what it saw.
        var returned = new System.Collections.Concurrent.ConcurrentDictionary<IMemoryOwner<byte>, int>(ReferenceEqualityComparer.Instance);
        int returns = 0;
        var returner = TestThread.Start(() =>
        {
            foreach (IMemoryOwner<byte> owner in handOff.GetConsumingEnumerable())
            {
                int order = Interlocked.Increment(ref returns); // counted before the return, so the 64 after it are counted when it comes back
                owner.Dispose();
                returned[owner] = order; // before the next return: the owner cannot come back sooner
            }
        });
        var seen = new HashSet<IMemoryOwner<byte>>(ReferenceEqualityComparer.Instance);
        int reused = 0;
        for (int i = 0; i < 20_000; i++)
        {
            IMemoryOwner<byte> owner = pool.Rent(1024);
            owner.Memory.Span[0] = (byte)i;
            if (returned.TryGetValue(owner, out int returnedAs))
            {
                // Handed out again: only after the quarantine of 64 later returns on the returning thread.
                Assert.True(Volatile.Read(ref returns) - returnedAs >= 64, $"owner reused after {Volatile.Read(ref returns) - returnedAs} returns");
                returned.TryRemove(owner, out _);
                reused++;
            }
            else
            {
                Assert.True(seen.Add(owner), "an owner came back that the returning thread had not returned");
            }

            handOff.Add(owner);
        }

        handOff.CompleteAdding();
        returner.Join();

        // The renting thread returns nothing itself, so every owner it gets again was spilled by the returning thread's
        // ring into the shared store: a few hundred owners serve 20 000 rents.
        Assert.True(seen.Count < 2_000, $"{seen.Count} owners for 20 000 rents");
        Assert.True(reused > 18_000, $"{reused} of 20 000 rents reused a returned owner");
        Assert.Equal(0, pool.RentedBuffers);
    }

    [Fact]
    public void Dispose_SecondOneLongAfterTheFirst_NeverReturnsAnotherRentersBuffer()
    {
        // The default pool. With owners recycled (the default before issue 33), the stale owner object came back to a later
        // renter after 64 returns, and the first renter's late second Dispose returned that renter's block while it was
        // in use: the count fell to 0 and the renter's memory was gone.
        using var pool = BuddyMemoryPool.Create(4 << 20);
        var heap = (ConcurrentHeap)pool.Allocator;
        IMemoryOwner<byte> stale = pool.Rent(256);
        stale.Dispose();

        // Rent and return far more than any quarantine; a renter who gets the stale owner's object keeps it.
        IMemoryOwner<byte>? renter = null;
        for (int i = 0; i < 2000 && renter is null; i++)
        {
            IMemoryOwner<byte> owner = pool.Rent(256);
            if (ReferenceEquals(owner, stale))
            {
                renter = owner;
            }
            else
            {
                owner.Dispose();
            }
        }

        // Without recycling that never happens: the renter is then simply the next one.
        renter ??= pool.Rent(256);
        renter.Memory.Span.Fill(7);

        stale.Dispose(); // the first renter's late second Dispose

        Assert.Equal(1, pool.RentedBuffers);
        Assert.Equal(1, heap.Stats.LiveBlocks);
        Assert.True(renter.Memory.Span.IndexOfAnyExcept((byte)7) < 0, "the renter's buffer was changed");
        Assert.Throws<ObjectDisposedException>(() => stale.Memory);
        renter.Dispose();
        Assert.Equal(0, pool.RentedBuffers);
        Assert.Equal(0, heap.Stats.LiveBlocks);
    }

    [Fact]
    public void Options_Default_RecyclesNoOwner()
    {
        Assert.Equal(0, new BuddyMemoryPoolOptions().RecycledOwners);
        using var pool = BuddyMemoryPool.Create(4 << 20);
        var owners = new HashSet<IMemoryOwner<byte>>(ReferenceEqualityComparer.Instance);
        for (int i = 0; i < 1000; i++)
        {
            IMemoryOwner<byte> owner = pool.Rent();
            Assert.True(owners.Add(owner), $"rent {i} got an owner handed out before");
            owner.Dispose();
        }
    }

    [Fact]
    public void Options_NegativeRecycledOwners_ThrowsArgumentOutOfRange()
    {
        using var heap = LockedHeap.Create(1 << 20);
        Assert.Throws<ArgumentOutOfRangeException>(() => new BuddyMemoryPool(heap, new BuddyMemoryPoolOptions { RecycledOwners = -1 }));
    }
}
