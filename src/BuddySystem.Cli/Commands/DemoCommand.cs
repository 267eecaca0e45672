using BuddySystem.Collections;
using BuddySystem.Diagnostics;

namespace BuddySystem.Cli.Commands;

/// <summary>
/// <c>buddy demo</c>: the tutorial's <c>dynamic_allocating_test</c> on a <see cref="LockedHeap"/> over an 8 MiB region
/// (<c>KERNEL_HEAP_SIZE = 0x800000</c>).
/// </summary>
internal static class DemoCommand
{
    /// <summary>The tutorial's kernel heap size.</summary>
    internal const int KernelHeapSize = 0x800000;

    internal static Command Create()
    {
        var command = new Command("demo", "Run the tutorial's dynamic_allocating_test on an 8 MiB LockedHeap and print the heap's stats.");
        var mapOption = CommonOptions.Picture("--map", "Also draw the heap while the vec is live: FILE.svg or FILE.png (see `buddy map`).");
        command.Options.Add(mapOption);
        command.SetAction(result =>
        {
            FileInfo? map = result.GetValue(mapOption);
            HeapSnapshot? snapshot = null;
            int exit = Run(Console.Out, map == null ? null : heap => snapshot = HeapSnapshot.Of(heap));
            if (map != null && snapshot != null)
            {
                MapCommand.Save(snapshot, MapCommand.DemoSource, "buddy demo --map " + map.Name, map);
                Console.WriteLine($"map: {map.FullName}");
            }

            return exit;
        });
        return command;
    }

    /// <summary>Runs the test, writing the tutorial's six lines and a stats table; returns the exit code.</summary>
    /// <param name="output">Where the lines go.</param>
    /// <param name="inspect">Called with the heap while the vec is live (when the stats are written), e.g. to snapshot it.</param>
    internal static unsafe int Run(TextWriter output, Action<LockedHeap>? inspect = null)
    {
        using var region = new NativeRegion(KernelHeapSize, KernelHeapSize);
        var engine = new BuddyHeap();
        engine.AddRegion(region.Pointer, region.Size);
        using var heap = new LockedHeap(engine);

        using (var heapValue = new Box<int>(heap, 5))
        {
            if (!Check(output, heapValue.Value == 5, "heap_value assertion successfully!", $"heap_value should be 5 but is {heapValue.Value}"))
            {
                return 1;
            }

            output.WriteLine($"heap_value is at {Hex(heapValue.Pointer)}");
            if (!Check(output, region.Contains(heapValue.Pointer), "heap_value is in the heap region!", $"heap_value at {Hex(heapValue.Pointer)} is outside the heap region {Hex(region.Pointer)}..{Hex((byte*)region.Pointer + region.Size)}"))
            {
                return 1;
            }
        }

        using (var vec = new Vec<int>(heap))
        {
            for (int i = 0; i < 500; i++)
            {
                vec.Push(i);
            }

            int wrong = -1;
            for (int i = 0; i < vec.Count && wrong < 0; i++)
            {
                wrong = vec[i] == i ? -1 : i;
            }

            if (!Check(output, wrong < 0 && vec.Count == 500, "vec assertion successfully!", $"vec[{wrong}] should be {wrong}"))
            {
                return 1;
            }

            output.WriteLine($"vec is at {Hex(vec.Pointer)}");
            if (!Check(output, region.Contains(vec.Pointer), "vec is in the heap region!", $"vec at {Hex(vec.Pointer)} is outside the heap region"))
            {
                return 1;
            }

            WriteStats(output, heap.Stats, HeapSnapshot.Of(heap), "heap while vec is live");
            inspect?.Invoke(heap);
        }

        heap.Validate();
        return 0;
    }

    private static bool Check(TextWriter output, bool passed, string success, string failure)
    {
        output.WriteLine(passed ? success : "FAILED: " + failure);
        return passed;
    }

    private static unsafe string Hex(void* pointer) => "0x" + ((ulong)pointer).ToString("x", CultureInfo.InvariantCulture);

    /// <summary>Writes the user/allocated/total bytes and the free and cached blocks per order as tables.</summary>
    /// <remarks>The free blocks come from <paramref name="snapshot"/>, as <c>buddy map</c> draws them: the blocks on the
    /// buddy lists, and apart from them the blocks parked unmerged in the lazy caches. <see cref="HeapStats.FreeBlocksByOrder"/>
    /// counts the cached blocks as the blocks they would merge into, so the same heap read one free block at each of
    /// orders 7 to 18 in the text and none at orders 0 to 11 plus 62 KiB cached in the picture.</remarks>
    internal static void WriteStats(TextWriter output, HeapStats stats, HeapSnapshot snapshot, string title)
    {
        var console = AnsiConsole.Create(new AnsiConsoleSettings { Out = new AnsiConsoleOutput(output), Ansi = AnsiSupport.Detect, ColorSystem = ColorSystemSupport.Detect });
        var table = new Table().Title(title).AddColumn("measure").AddColumn(new TableColumn("bytes").RightAligned());
        table.AddRow("user (requested)", stats.UserBytes.ToString("N0", CultureInfo.InvariantCulture));
        table.AddRow("allocated (block sizes)", stats.AllocatedBytes.ToString("N0", CultureInfo.InvariantCulture));
        table.AddRow("total (managed)", stats.TotalBytes.ToString("N0", CultureInfo.InvariantCulture));
        table.AddRow("metadata (side table)", stats.MetadataBytes.ToString("N0", CultureInfo.InvariantCulture));
        table.AddRow("free on the buddy lists", (snapshot.FreeBytes - snapshot.CachedBytes).ToString("N0", CultureInfo.InvariantCulture));
        table.AddRow("cached (free, not merged)", snapshot.CachedBytes.ToString("N0", CultureInfo.InvariantCulture));
        table.AddRow("largest free block", snapshot.LargestFreeBlock.ToString("N0", CultureInfo.InvariantCulture));
        console.Write(table);

        var cached = new long[snapshot.OrderCount];
        foreach (HeapBlock block in snapshot.Blocks.Where(b => b.State == BlockState.Cached))
        {
            cached[block.Order]++;
        }

        var orders = new Table().Title("free and cached blocks per order")
            .AddColumn("order").AddColumn("block").AddColumn(new TableColumn("free").RightAligned()).AddColumn(new TableColumn("cached").RightAligned());
        for (int order = 0; order < snapshot.OrderCount; order++)
        {
            ulong size = snapshot.MinBlockSize << order;
            orders.AddRow(order.ToString(CultureInfo.InvariantCulture), ByteSize.Long(size), snapshot.FreeBlocksByOrder[order].ToString(CultureInfo.InvariantCulture), cached[order].ToString(CultureInfo.InvariantCulture));
        }

        console.Write(orders);
    }
}
