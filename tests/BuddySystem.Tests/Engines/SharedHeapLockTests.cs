using System.Diagnostics;
using BuddySystem.Cli.Commands;
using BuddySystem.Internals;
using BuddySystem.Testing;

namespace BuddySystem.Tests.Engines;

/// <summary>SharedHeap's lock (a robust process-shared mutex in the header page), the file's permissions, and bytes
/// written into the file by another process: a holder killed while holding the lock, a lock another process broke, a
/// file other users can write, and random bytes in the metadata.</summary>
[System.Runtime.Versioning.SupportedOSPlatform("linux")]
public sealed unsafe class SharedHeapLockTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("shm-lock-").FullName;

    public void Dispose() => Directory.Delete(_dir, true);

    private string PathOf(string name) => Path.Combine(_dir, name);

    [LinuxFact]
    public void Create_Default_FileIsOwnerReadWriteOnly()
    {
        using var heap = SharedHeap.Create(PathOf("h"), 1 << 16);
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(PathOf("h")));
    }

    [LinuxFact]
    public void Create_FileModeOption_SetsTheModeExactly()
    {
        var mode = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead | UnixFileMode.GroupWrite;
        using var heap = SharedHeap.Create(PathOf("h"), 1 << 16, new SharedHeapOptions { FileMode = mode });
        Assert.Equal(mode, File.GetUnixFileMode(PathOf("h"))); // the umask (usually 022) does not apply
        Assert.Throws<ArgumentException>(() => SharedHeap.Create(PathOf("x"), 1 << 16, new SharedHeapOptions { FileMode = UnixFileMode.UserRead }));
        Assert.False(File.Exists(PathOf("x")));
    }

    [LinuxFact]
    public void Open_FileOtherUsersCanWrite_RefusedUnlessAllowed()
    {
        string path = PathOf("h");
        SharedHeap.Create(path, 1 << 16).Dispose();
        File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.OtherWrite);
        var e = Assert.Throws<UnauthorizedAccessException>(() => SharedHeap.Open(path));
        Assert.Contains(path, e.Message, StringComparison.Ordinal);
        Assert.Contains("AllowOtherWriters", e.Message, StringComparison.Ordinal);
        File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupWrite);
        Assert.Throws<UnauthorizedAccessException>(() => SharedHeap.Open(path));
        using var heap = SharedHeap.Open(path, new SharedHeapOptions { AllowOtherWriters = true });
        heap.Free(heap.Allocate(16));
    }

    [LinuxFact]
    public void Open_Version1File_RefusedNamingTheVersion()
    {
        string path = PathOf("h");
        SharedHeap.Create(path, 1 << 16).Dispose();
        byte[] bytes = File.ReadAllBytes(path);
        bytes[8] = 1; // the flock format of before the mutex
        File.WriteAllBytes(path, bytes);
        var e = Assert.Throws<InvalidDataException>(() => SharedHeap.Open(path));
        Assert.Contains("version 1", e.Message, StringComparison.Ordinal);
    }

    [LinuxFact]
    public void LockState_FreeAndHeldByALiveThread_ReportsThePid()
    {
        using var heap = SharedHeap.Create(PathOf("h"), 1 << 16);
        Assert.Equal(SharedHeapLockStatus.Free, heap.LockState.Status);
        Assert.Equal("free", SharedHeap.PeekLockState(PathOf("h")).ToString());

        // The futex word as glibc leaves it while this process's main thread (tid = pid) holds the mutex.
        int* word = (int*)heap.Pointer(SharedHeapHeader.LockOffset);
        *word = Environment.ProcessId;
        try
        {
            SharedHeapLockState held = SharedHeap.PeekLockState(PathOf("h"));
            Assert.Equal(SharedHeapLockStatus.Held, held.Status);
            Assert.Equal(Environment.ProcessId, held.HolderProcessId);
            Assert.Contains($"held by pid {Environment.ProcessId}", heap.LockState.ToString(), StringComparison.Ordinal);
        }
        finally
        {
            *word = 0;
        }

        heap.Free(heap.Allocate(16)); // the mutex still works
    }

    [LinuxFact]
    public void Enter_LockMadeNotRecoverable_ThrowsCorruption()
    {
        using var heap = SharedHeap.Create(PathOf("h"), 1 << 16);
        *(int*)heap.Pointer(SharedHeapHeader.LockOffset + 8) = 0x7FFFFFFE; // glibc's __owner of a not recoverable mutex
        Assert.Equal(SharedHeapLockStatus.NotRecoverable, heap.LockState.Status);
        var e = Assert.Throws<HeapCorruptionException>(() => heap.Allocate(16));
        Assert.Contains("not recoverable", e.Message, StringComparison.Ordinal);
    }

    [LinuxFact]
    public void Enter_LockKindOverwritten_ThrowsCorruptionWithoutCallingGlibc()
    {
        using var heap = SharedHeap.Create(PathOf("h"), 1 << 16);
        int* kind = (int*)heap.Pointer(SharedHeapHeader.LockOffset + 16);
        int saved = *kind;
        *kind = 3;
        Assert.Contains("kind", Assert.Throws<HeapCorruptionException>(() => heap.Allocate(16)).Message, StringComparison.Ordinal);
        *kind = saved;
        heap.Free(heap.Allocate(16));
    }

    [LinuxFact]
    public void Open_HolderKilledHoldingTheLock_NextCallerTakesItAndRecoversOnlyAChange()
    {
        // Step 1 is just after the lock is taken (no change begun: nothing to recover); step 5 of AllocateInto is inside
        // its change (intent published, state byte written: rolled back).
        foreach ((long step, long recoveries) in new[] { (1L, 0L), (5L, 1L) })
        {
            string path = PathOf($"k{step}");
            SharedHeap.Create(path, 1 << 20).Dispose();
            using (Process worker = Process.Start(ShmWorkerCommand.StartInfo(path, 0, 1, 0, 7, crashAfter: step))!)
            {
                Assert.True(worker.WaitForExit(60_000), "the worker did not kill itself");
                Assert.True(worker.ExitCode == 137, $"worker exit {worker.ExitCode}: {worker.StandardError.ReadToEnd()}");
            }

            Assert.Equal(SharedHeapLockStatus.HolderDied, SharedHeap.PeekLockState(path).Status);
            using var heap = SharedHeap.Open(path);
            Assert.Equal(recoveries == 1, heap.RecoveredAtOpen);
            Assert.Equal(1, heap.LockOwnerDeaths);
            Assert.Equal(recoveries, heap.Recoveries);
            Assert.Equal(SharedHeapLockStatus.Free, heap.LockState.Status);
            heap.Validate();
            SharedHeapSlots.Check(heap, patterns: false);
        }
    }

    [LinuxFact]
    public void Calls_RandomBytesInTheMetadata_ThrowOrWorkNeverStrayOutside()
    {
        // Another process may write anything into the state bytes, the tree and the intent record: every call must stay
        // inside the mapping and either work or throw. A stray access past the mapping would kill the test host.
        var random = new SplitMix64(23);
        for (int round = 0; round < 300; round++)
        {
            string path = PathOf($"f{round}");
            using (var heap = SharedHeap.Create(path, 1 << 16, new SharedHeapOptions { RootSize = 64 }))
            {
                var live = new List<ulong>();
                for (int i = 0; i < 20; i++)
                {
                    live.Add(heap.Allocate(16UL << (int)random.Next(6)));
                }

                var header = (SharedHeapHeader*)heap.Pointer(0);
                ulong metadata = header->DataOffset - header->StatesOffset;
                for (int i = 0; i < 1 + (int)random.Next(8); i++)
                {
                    heap.Pointer(header->StatesOffset)[random.Next(metadata)] = (byte)random.Next(256);
                }

                if (round % 3 == 0)
                {
                    // An intent record of random words (the op among the real ones, so Open's header check passes).
                    header->IntentOffset = random.Next(header->FileLength * 2);
                    header->IntentOrder = random.Next(40);
                    header->IntentSlot = random.Next(header->FileLength * 2);
                    header->IntentOp = 1 + random.Next(4);
                }

                for (int i = 0; i < 40; i++)
                {
                    Survive(() =>
                    {
                        if (random.Next(2) == 0)
                        {
                            _ = heap.TryAllocate(random.Next(4096), 16, out _);
                        }
                        else
                        {
                            heap.Free(random.Next(2) == 0 ? live[(int)random.Next((ulong)live.Count)] : random.Next(header->FileLength * 2));
                        }
                    });
                }

                Survive(() => _ = heap.Stats);
                Survive(() => _ = Diagnostics.HeapSnapshot.Of(heap));
                Survive(heap.Validate);
            }

            Survive(() => SharedHeap.Open(path).Dispose());
            File.Delete(path);
        }
    }

    private static void Survive(Action call)
    {
        try
        {
            call();
        }
        catch (Exception e) when (e is ArgumentException or HeapCorruptionException or InvalidDataException or HeapExhaustedException)
        {
        }
    }
}
