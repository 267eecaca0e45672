using BuddySystem.Cli;

namespace BuddySystem.Tests;

/// <summary>
/// <c>buddy run --library FILE</c> takes only an ELF shared object of this machine that exports <c>malloc</c> (issue 32:
/// <c>--library /etc/passwd -- /bin/true</c> exited 0, ld.so having skipped the file and the program run on glibc).
/// </summary>
public class PreloadLibraryTests
{
    // The C library this process runs on: an ELF shared object that defines malloc, found where the loader mapped it.
    private static string LibC => File.ReadLines("/proc/self/maps").Select(line => line[(line.IndexOf('/') is var at and >= 0 ? at : line.Length)..])
        .First(path => Path.GetFileName(path).StartsWith("libc.so", StringComparison.Ordinal));

    [LinuxTheory]
    [InlineData("/etc/passwd", "is not an ELF file")]
    [InlineData("/bin/true", "does not export malloc")]
    public void Run_LibraryThatIsNoAllocator_OneLineExitTwo(string library, string expected)
    {
        var error = new StringWriter();

        int exit = Program.Run(["run", "--library", library, "--", "/bin/true"], error);

        string text = error.ToString();
        Assert.Equal(2, exit);
        Assert.Single(text.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.StartsWith($"buddy run: --library {library} {expected}", text, StringComparison.Ordinal);
    }

    [LinuxFact]
    public void Run_LibraryExportingMalloc_RunsTheProgram()
    {
        var error = new StringWriter();

        Assert.Equal(0, Program.Run(["run", "--library", LibC, "--", "/bin/true"], error));
        Assert.Equal(string.Empty, error.ToString());
    }

    [LinuxFact]
    public void Problem_LibC_None() => Assert.Null(PreloadLibrary.Problem(LibC));

    [LinuxFact]
    public void Problem_SharedObjectWithoutMalloc_Named()
    {
        string libm = Path.Combine(Path.GetDirectoryName(LibC)!, "libm.so.6"); // glibc's maths: it calls malloc, defines none

        Assert.Contains("does not export malloc", PreloadLibrary.Problem(libm), StringComparison.Ordinal);
    }

    [LinuxTheory]
    [InlineData(4, 1, "is not a 64-bit little-endian ELF file")] // EI_CLASS 1: 32-bit
    [InlineData(16, 2, "not a shared object")] // e_type 2: ET_EXEC
    [InlineData(18, 40, "is built for ELF machine 40")] // e_machine 40: ARM
    public void Problem_ElfHeaderOfAnotherKind_Named(int offset, byte value, string expected)
    {
        byte[] elf = File.ReadAllBytes(LibC);
        elf[offset] = value;
        if (offset >= 16)
        {
            elf[offset + 1] = 0; // the high byte of a 16-bit field
        }

        Assert.Contains(expected, PreloadLibrary.Problem(elf), StringComparison.Ordinal);
    }

    [LinuxFact]
    public void Bench_ProgramsWithALibraryThatIsNoAllocator_OneLineExitTwo()
    {
        var error = new StringWriter();

        Assert.Equal(2, Program.Run(["bench", "--programs", "--library", "/etc/passwd"], error));
        Assert.Contains("is not an ELF file", error.ToString(), StringComparison.Ordinal);
    }

    /// <summary>The check runs while the command line is parsed, where an exception would be a stack trace: any bytes,
    /// however broken, give an answer, never an exception.</summary>
    [LinuxFact]
    public void Problem_CorruptedElf_AnswersWithoutThrowing()
    {
        byte[] original = File.ReadAllBytes(LibC);
        var random = new Random(32);
        for (int round = 0; round < 2000; round++)
        {
            byte[] elf = (byte[])original.Clone();
            for (int flips = random.Next(1, 6); flips > 0; flips--)
            {
                // Mostly the header and the section headers, where the offsets and counts the reader follows live.
                int at = random.Next(3) switch
                {
                    0 => random.Next(64),
                    1 => elf.Length - 1 - random.Next(Math.Min(elf.Length, 64 * 40)),
                    _ => random.Next(elf.Length),
                };
                elf[at] = (byte)random.Next(256);
            }

            _ = PreloadLibrary.Problem(elf.AsSpan(0, random.Next(3) == 0 ? random.Next(elf.Length) : elf.Length));
        }
    }
}
