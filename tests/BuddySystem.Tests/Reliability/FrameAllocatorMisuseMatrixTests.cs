namespace BuddySystem.Tests.Reliability;

/// <summary>
/// The misuse matrix of issue 6 for <see cref="FrameAllocator"/>, one test per row. Its contract (the crate's API): every
/// bad deallocation is an <see cref="ArgumentException"/> whose message names the first frame as <c>[frame, +count)</c>,
/// and there is nothing to dispose. Each test asserts that the allocator still validates, kept its counts, and serves.
/// </summary>
public class FrameAllocatorMisuseMatrixTests
{
    private const ulong Frames = 1024;

    private static FrameAllocator NewFrames(out ulong block)
    {
        var frames = new FrameAllocator();
        frames.AddFrames(0, Frames);
        block = frames.Allocate(4)!.Value;
        return frames;
    }

    private static void AssertStillServes(FrameAllocator frames, ulong allocatedBefore, ulong block)
    {
        frames.Validate();
        Assert.Equal(allocatedBefore, frames.AllocatedFrames);
        ulong? extra = frames.Allocate(4);
        Assert.NotNull(extra);
        frames.Deallocate(extra.Value, 4);
        frames.Deallocate(block, 4);
        frames.Validate();
        Assert.Equal(0ul, frames.AllocatedFrames);
        Assert.Equal(0ul, frames.Allocate(Frames)); // merged back into one block of all the frames
    }

    [Fact]
    public void Deallocate_DoubleFree_ThrowsArgumentNamingFrame()
    {
        FrameAllocator frames = NewFrames(out ulong block);
        ulong second = frames.Allocate(4)!.Value;
        frames.Deallocate(second, 4);
        ulong before = frames.AllocatedFrames;
        var error = Assert.Throws<ArgumentException>(() => frames.Deallocate(second, 4));
        Assert.Contains($"[{second}, +4)", error.Message, StringComparison.Ordinal);
        AssertStillServes(frames, before, block);
    }

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    public void Deallocate_InteriorFrame_ThrowsArgumentNamingFrame(int offset)
    {
        FrameAllocator frames = NewFrames(out ulong block);
        ulong before = frames.AllocatedFrames;
        ulong interior = block + (ulong)offset;
        var error = Assert.Throws<ArgumentException>(() => frames.Deallocate(interior, 1));
        Assert.Contains($"[{interior}, +1)", error.Message, StringComparison.Ordinal);
        AssertStillServes(frames, before, block);
    }

    [Fact]
    public void Deallocate_NeverAllocatedOrForeignFrame_ThrowsArgumentNamingFrame()
    {
        FrameAllocator frames = NewFrames(out ulong block);
        ulong before = frames.AllocatedFrames;
        foreach (ulong frame in new[] { Frames / 2, (Frames / 2) + 4, Frames + 64, 1UL << 40 })
        {
            var error = Assert.Throws<ArgumentException>(() => frames.Deallocate(frame, 4));
            Assert.Contains($"[{frame}, +4)", error.Message, StringComparison.Ordinal);
        }

        AssertStillServes(frames, before, block);
    }

    [Theory]
    [InlineData(1)]
    [InlineData(8)]
    [InlineData(1000)]
    public void Deallocate_CountOfAnotherBlockSize_ThrowsArgumentNamingFrame(int count)
    {
        FrameAllocator frames = NewFrames(out ulong block);
        ulong before = frames.AllocatedFrames;
        var error = Assert.Throws<ArgumentException>(() => frames.Deallocate(block, (ulong)count));
        Assert.Contains($"[{block}, +{count})", error.Message, StringComparison.Ordinal);
        AssertStillServes(frames, before, block);
    }

    [Fact]
    public void Allocate_LargerThanAllFrames_ReturnsNullAndStillServes()
    {
        FrameAllocator frames = NewFrames(out ulong block);
        ulong before = frames.AllocatedFrames;
        Assert.Null(frames.Allocate(Frames + 1));
        Assert.Null(frames.Allocate(Frames)); // four frames are live
        Assert.Null(frames.Allocate(ulong.MaxValue));
        Assert.Null(frames.AllocateAligned(1, 1UL << 62));
        AssertStillServes(frames, before, block);
    }

    [Fact]
    public void AllocateAligned_NonPowerOfTwoAlignment_ThrowsArgument()
    {
        FrameAllocator frames = NewFrames(out ulong block);
        ulong before = frames.AllocatedFrames;
        foreach (ulong align in new ulong[] { 0, 3, 24 })
        {
            var error = Assert.Throws<ArgumentException>(() => frames.AllocateAligned(4, align));
            Assert.Equal("align", error.ParamName);
        }

        AssertStillServes(frames, before, block);
    }

    [Fact]
    public void AddFrames_OverlappingRange_ThrowsArgumentNamingBothRanges()
    {
        FrameAllocator frames = NewFrames(out ulong block);
        ulong before = frames.AllocatedFrames;
        var error = Assert.Throws<ArgumentException>(() => frames.AddFrames(Frames - 8, Frames + 8));
        Assert.Contains($"[{Frames - 8}, {Frames + 8})", error.Message, StringComparison.Ordinal);
        Assert.Contains($"[0, {Frames})", error.Message, StringComparison.Ordinal);
        Assert.Equal(Frames, frames.TotalFrames);
        AssertStillServes(frames, before, block);
    }
}
