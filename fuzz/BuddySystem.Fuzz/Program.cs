using BuddySystem.Testing;
using SharpFuzz;

namespace BuddySystem.Fuzz;

/// <summary>
/// The AFL++ target (tools/fuzz.sh): each input is decoded by <see cref="ByteScript"/> into heap operations and run on
/// every engine with all checks on. A broken promise throws, which SharpFuzz reports to AFL++ as a crash.
/// </summary>
internal static class Program
{
    private static void Main(string[] args)
    {
        if (args.Length > 0)
        {
            // Replay files given on the command line (a crash AFL++ found, or the corpus) without the fuzzer.
            foreach (string path in args)
            {
                int operations = ByteScript.RunOnAllEngines(File.ReadAllBytes(path), EngineCatalog.TargetFactories);
                Console.WriteLine($"{path}: {operations} operations OK");
            }

            return;
        }

        Fuzzer.OutOfProcess.Run(stream =>
        {
            using var buffer = new MemoryStream();
            stream.CopyTo(buffer);
            ByteScript.RunOnAllEngines(buffer.GetBuffer().AsSpan(0, (int)buffer.Length), EngineCatalog.TargetFactories);
        });
    }
}
