using System.Runtime.InteropServices;

namespace BuddySystem.Tests;

/// <summary>Native memory for a test, aligned as asked, freed on dispose.</summary>
internal sealed unsafe class TestRegion : IDisposable
{
    public TestRegion(nuint size, nuint alignment)
    {
        Pointer = (byte*)NativeMemory.AlignedAlloc(size, alignment);
        Size = size;
    }

    public byte* Pointer { get; }

    public nuint Size { get; }

    public void Dispose() => NativeMemory.AlignedFree(Pointer);
}
