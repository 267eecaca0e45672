using BuddySystem.Testing;
using CsCheck;

namespace BuddySystem.Tests.Reliability;

/// <summary>
/// The fuzzing harness's decoder (<see cref="ByteScript"/>) run as ordinary tests: every committed corpus file
/// (fuzz/corpus, grown by tools/fuzz.sh) on every engine, and random byte strings from CsCheck.
/// </summary>
public class FuzzCorpusTests
{
    public static TheoryData<string> CorpusFiles
    {
        get
        {
            var files = new TheoryData<string>();
            foreach (string path in Directory.GetFiles(Path.Combine(AppContext.BaseDirectory, "fuzz-corpus"), "*.bin").Order(StringComparer.Ordinal))
            {
                files.Add(Path.GetFileName(path));
            }

            return files;
        }
    }

    public static TheoryData<string> Engines => [.. EngineCatalog.TargetNames];

    [Fact]
    public void Corpus_IsCommittedAndCopied()
    {
        Assert.True(CorpusFiles.Count >= 6, "fuzz/corpus should hold the seed inputs");
    }

    [Theory]
    [MemberData(nameof(CorpusFiles))]
    public void CorpusFile_OnEveryEngine_RunsWithoutBrokenPromise(string file)
    {
        byte[] script = File.ReadAllBytes(Path.Combine(AppContext.BaseDirectory, "fuzz-corpus", file));
        int operations = ByteScript.RunOnAllEngines(script, EngineCatalog.TargetFactories);
        Assert.True(operations > 0);
    }

    [Theory]
    [MemberData(nameof(Engines))]
    public void RandomBytes_AsScript_RunWithoutBrokenPromise(string engine)
    {
        Gen.Byte.Array[0, 512].Sample(bytes => { ByteScript.Run(size => EngineCatalog.CreateTarget(engine, size), bytes); }, iter: 300, threads: 1);
    }

    [Fact]
    public void Script_MisuseOpcodes_AreExercised()
    {
        // allocate 64, allocate 64, free #1, double free, interior pointer, wrong layout, outside address, validate.
        byte[] script = [0, 64, 0, 3, 0, 64, 0, 3, 1, 1, 3, 0, 4, 0, 5, 5, 0, 8, 7];
        Assert.Equal(8, ByteScript.Run(size => EngineCatalog.CreateTarget("buddy-heap", size), script));
    }
}
