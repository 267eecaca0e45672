using System.Reflection;
using Xunit.Sdk;

namespace BuddySystem.Tests.Malloc;

/// <summary>One row of <see cref="MallocTests.Programs"/> (the program and its arguments) for a theory; the row is skipped,
/// naming the program, when that program is not installed, and the other rows still run.</summary>
[AttributeUsage(AttributeTargets.Method, AllowMultiple = true)]
public sealed class ProgramDataAttribute : DataAttribute
{
    /// <summary>The row <paramref name="row"/> of <see cref="MallocTests.Programs"/>.</summary>
    public ProgramDataAttribute(int row)
    {
        Row = row;
        Skip = Tools.MissingReason([MallocTests.Programs[row].Program]);
    }

    /// <summary>The row's index in <see cref="MallocTests.Programs"/>.</summary>
    public int Row { get; }

    /// <inheritdoc/>
    public override IEnumerable<object[]> GetData(MethodInfo testMethod)
    {
        (string program, string arguments) = MallocTests.Programs[Row];
        return [[program, arguments]];
    }
}
