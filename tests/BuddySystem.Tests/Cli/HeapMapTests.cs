using BuddySystem.Cli.Commands;
using BuddySystem.Cli.Maps;
using BuddySystem.Diagnostics;
using BuddySystem.Cli.Text;

namespace BuddySystem.Tests;

public class HeapMapTests
{
    [Fact]
    public void Render_SixtyFourByteHeap_DrawsEveryBlockAndTheWholeTree()
    {
        var snapshot = new HeapSnapshot(
            [new HeapBlock(0, 0, 16, BlockState.Allocated), new HeapBlock(16, 0, 16, BlockState.Free), new HeapBlock(32, 1, 32, BlockState.Free)],
            16,
            3);

        string svg = MapPictureWriter.Svg(HeapMapRenderer.Render(snapshot, "test"));

        Assert.Contains("Buddy tree, all 3 orders", svg, StringComparison.Ordinal);
        Assert.Contains("nothing is aggregated", svg, StringComparison.Ordinal);
        Assert.DoesNotContain("Aggregated:", svg, StringComparison.Ordinal);
        // One row of 64 B over 1024 px: the allocated 16 B block is 256 px wide (less a 1 px gap) at the strip's start.
        Assert.Matches($"<rect fill=\"{MapPalette.For(BlockState.Allocated, 0).ToUpperInvariant()}\" x=\"[0-9.]+\" y=\"[0-9.]+\" width=\"255\" height=\"48\"", svg);
        Assert.Contains("16 B used", svg, StringComparison.Ordinal);
        Assert.Contains("32 B free", svg, StringComparison.Ordinal);
    }

    [Fact]
    public void Render_GiBHeapWithSixteenByteBlocks_AggregatesAndSaysSo()
    {
        // 64 blocks of 16 B at offset 0 (every other one allocated), then the split chain 1 KiB, 2 KiB, … 512 MiB.
        var blocks = new List<HeapBlock>();
        for (ulong i = 0; i < 64; i++)
        {
            blocks.Add(new HeapBlock(i * 16, 0, 16, i % 2 == 0 ? BlockState.Allocated : BlockState.Free));
        }

        for (int order = 6; order < 26; order++)
        {
            ulong size = 16UL << order;
            blocks.Add(new HeapBlock(size, order, size, BlockState.Free));
        }

        var snapshot = new HeapSnapshot(blocks, 16, 27);
        Assert.Equal(1UL << 30, snapshot.SpanBytes);

        string svg = MapPictureWriter.Svg(HeapMapRenderer.Render(snapshot, "test"));

        Assert.Contains("64 rows of 16 MiB", svg, StringComparison.Ordinal);
        Assert.Contains("1 px = 16 KiB", svg, StringComparison.Ordinal);
        Assert.Contains("Aggregated: 1 pixel holds blocks smaller than a pixel (16 KiB)", svg, StringComparison.Ordinal);
        Assert.Contains("the top 9 of 27 orders", svg, StringComparison.Ordinal);
        // The one aggregated pixel (offsets 0 to 16 KiB, blocks up to 8 KiB) holds 512 allocated bytes: a bar of 1/32 of the 5 px row.
        Assert.Matches($"<rect fill=\"{MapPalette.For(BlockState.Allocated, 0).ToUpperInvariant()}\" x=\"[0-9.]+\" y=\"[0-9.]+\" width=\"1\" height=\"0.15625\"", svg);
    }

    [Fact]
    public void Svg_DrawsEveryTextOfTheSceneOnce()
    {
        var snapshot = new HeapSnapshot([new HeapBlock(0, 2, 64, BlockState.Free)], 16, 3);
        MapScene scene = HeapMapRenderer.Render(snapshot, "test");

        string svg = MapPictureWriter.Svg(scene);

        int texts = scene.Shapes.Count(s => s.Kind == MapShapeKind.Text && !string.IsNullOrEmpty(s.Text));
        Assert.Equal(texts, System.Text.RegularExpressions.Regex.Count(svg, "<text "));
        Assert.EndsWith("</svg>", svg.TrimEnd(), StringComparison.Ordinal);
    }

    [Fact]
    public void Write_Png_IsAPngTwiceTheSceneSize()
    {
        var snapshot = new HeapSnapshot([new HeapBlock(0, 2, 64, BlockState.Free)], 16, 3);
        MapScene scene = HeapMapRenderer.Render(snapshot, "test");
        using var stream = new MemoryStream();

        MapPictureWriter.WritePng(scene, stream);

        byte[] png = stream.ToArray();
        Assert.Equal([0x89, (byte)'P', (byte)'N', (byte)'G'], png[..4]);
        int width = (png[16] << 24) | (png[17] << 16) | (png[18] << 8) | png[19];
        Assert.Equal((int)(scene.Width * 2), width);
    }

    [Theory]
    [InlineData(16UL, "16 B")]
    [InlineData(8UL << 20, "8 MiB")]
    [InlineData((8UL << 20) - 2048, "8190 KiB")]
    [InlineData(1UL << 30, "1 GiB")]
    [InlineData((3UL << 30) + 16, "≈ 3 GiB")]
    public void Long_Bytes_NeverRoundsToAnExactLookingSize(ulong bytes, string expected)
    {
        Assert.Equal(expected, ByteSize.Long(bytes));
    }

    [Fact]
    public void Save_UnknownExtension_Throws()
    {
        var snapshot = new HeapSnapshot([new HeapBlock(0, 0, 16, BlockState.Free)], 16, 1);
        Assert.Throws<BuddySystem.Cli.BadInputException>(() => MapCommand.Save(snapshot, "test", null, new FileInfo(Path.Combine(Path.GetTempPath(), "map.gif"))));
    }

    [Fact]
    public void Save_DemoHeap_WritesAnSvgShowingTheVecBlock()
    {
        HeapSnapshot? snapshot = null;
        Assert.Equal(0, DemoCommand.Run(TextWriter.Null, heap => snapshot = HeapSnapshot.Of(heap)));
        Assert.NotNull(snapshot);
        string path = Path.Combine(Path.GetTempPath(), $"buddy-map-{Guid.NewGuid():n}.svg");
        try
        {
            MapCommand.Save(snapshot, MapCommand.DemoSource, "buddy map", new FileInfo(path));
            string svg = File.ReadAllText(path);
            Assert.StartsWith("<?xml", svg, StringComparison.Ordinal);
            Assert.Contains("<svg ", svg, StringComparison.Ordinal);
            Assert.Contains("allocated 2 KiB in 1 block ", svg, StringComparison.Ordinal);
            Assert.Equal(1, snapshot.LiveBlocks);
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public void Replayed_OnSlabHeap_ShowsTheSlabCutIntoObjects()
    {
        string trace = Path.Combine(Path.GetTempPath(), $"buddy-map-{Guid.NewGuid():n}.trace");
        File.WriteAllText(trace, "a 1 100 8\na 2 100 8\nf 1\n");
        try
        {
            (HeapSnapshot snapshot, string source) = MapCommand.Replayed(null, new FileInfo(trace), 3, 64 << 10, eager: false, engine: "slab-heap");
            Assert.Contains("SlabHeap", source, StringComparison.Ordinal);
            var slab = Assert.Single(snapshot.Slabs);
            Assert.Equal(112u, slab.ObjectSize);
            Assert.Equal(1, snapshot.LiveBlocks);
            Assert.Equal(112ul, snapshot.AllocatedBytes);
            Assert.Equal(slab.Size - 112, snapshot.CachedBytes);
            MapScene scene = HeapMapRenderer.Render(snapshot, source, "test", null);
            Assert.Contains(scene.Shapes, shape => shape.Text != null && shape.Text.Contains("free in a slab", StringComparison.Ordinal));
        }
        finally
        {
            File.Delete(trace);
        }
    }

    [Fact]
    public void Replayed_OnConcurrentHeap_ShowsItsSlabCutIntoObjectsAndItsBuddyBlocks()
    {
        string trace = Path.Combine(Path.GetTempPath(), $"buddy-map-{Guid.NewGuid():n}.trace");
        File.WriteAllText(trace, "a 1 100 8\na 2 100 8\nf 1\na 3 20000 8\n");
        try
        {
            (HeapSnapshot snapshot, string source) = MapCommand.Replayed(null, new FileInfo(trace), 4, 256 << 10, eager: false, engine: "concurrent-heap");
            Assert.Contains("ConcurrentHeap", source, StringComparison.Ordinal);
            var slab = Assert.Single(snapshot.Slabs);
            Assert.Equal(112u, slab.ObjectSize);
            Assert.Equal(1, slab.LiveObjects);
            Assert.Equal(2, snapshot.LiveBlocks); // the object and the 32 KiB buddy block of the 20 000-byte request
            Assert.Equal(112ul + 32768ul, snapshot.AllocatedBytes);
            Assert.Contains(snapshot.Blocks, block => block.Size == 32768 && block.State == BlockState.Allocated);
        }
        finally
        {
            File.Delete(trace);
        }
    }

    [Fact]
    public void Replayed_TracePrefix_MatchesTheOperationsReplayed()
    {
        string trace = Path.Combine(Path.GetTempPath(), $"buddy-map-{Guid.NewGuid():n}.trace");
        File.WriteAllText(trace, "# test\na 1 100 8\na 2 16 8\nf 1\na 3 5000 8\n");
        try
        {
            (HeapSnapshot snapshot, string source) = MapCommand.Replayed(null, new FileInfo(trace), 3, 4096, eager: true);

            // After a 1, a 2, f 1 on an eager 4 KiB heap: block 2 (16 B) is live, everything else merged back around it.
            Assert.Equal(1, snapshot.LiveBlocks);
            Assert.Equal(16ul, snapshot.AllocatedBytes);
            Assert.Equal(4096ul, snapshot.TotalBytes);
            Assert.Contains("3 ops", source, StringComparison.Ordinal);

            (HeapSnapshot all, string allSource) = MapCommand.Replayed(null, new FileInfo(trace), 10, 4096, eager: true);
            Assert.Contains("1 failed", allSource, StringComparison.Ordinal);
            Assert.Equal(1, all.LiveBlocks);
        }
        finally
        {
            File.Delete(trace);
        }
    }

    [Fact]
    public void Replayed_W3Prefix_HasTheStreamsLiveBlocks()
    {
        var stream = new BuddySystem.Cli.Bench.W3Stream(BuddySystem.Cli.Bench.W3Stream.DefaultSeed);
        for (int i = 0; i < 500; i++)
        {
            stream.Next();
        }

        (HeapSnapshot snapshot, _) = MapCommand.Replayed("W3", null, 500, null, eager: false);

        Assert.Equal(stream.Live, snapshot.LiveBlocks);
        Assert.Equal(32ul << 20, snapshot.TotalBytes);
    }

    [Fact]
    public void Replayed_BothSources_Throws()
    {
        Assert.Throws<BuddySystem.Cli.BadInputException>(() => MapCommand.Replayed("W3", new FileInfo("x"), 1, null, false));
        Assert.Throws<BuddySystem.Cli.BadInputException>(() => MapCommand.Replayed("W9", null, 1, null, false));
        Assert.Throws<BuddySystem.Cli.BadInputException>(() => MapCommand.Replayed("W3", null, 1, 8, false));
    }

    /// <summary>Issue 32: the summary lines ran past the picture's right edge. Every text that starts at the left must end
    /// inside the picture, measured with the typeface the picture is drawn in, on the widest cases: a concurrent heap with
    /// slabs and cached blocks, a 1 GiB W3 heap, the demo.</summary>
    [Theory]
    [InlineData("concurrent-heap", 1 << 30)]
    [InlineData("slab-heap", 1 << 30)]
    [InlineData("buddy-heap", 1 << 30)]
    [InlineData("demo", 0)]
    public void Render_EveryTextEndsInsideThePicture(string engine, long heap)
    {
        (HeapSnapshot snapshot, string source) = engine == "demo"
            ? (MapCommand.DemoSnapshot(), MapCommand.DemoSource)
            : MapCommand.Replayed(null, new FileInfo(RepositoryFiles.Path("samples", "python.trace.gz")), 5000, (ulong)heap, eager: false, engine: engine);
        MapScene scene = HeapMapRenderer.Render(snapshot, source, $"buddy map --trace samples/python.trace.gz --ops 5000 --heap 1GiB -a {engine} --out map.png", null);

        foreach (MapShape text in scene.Shapes.Where(s => s.Kind == MapShapeKind.Text && s.Anchor == MapTextAnchor.Start && !string.IsNullOrEmpty(s.Text)))
        {
            double end = text.X + MapPictureWriter.TextWidth(text);
            Assert.True(end <= scene.Width, $"'{text.Text}' ends at {end:F0} px, past the picture's {scene.Width} px");
        }
    }
}
