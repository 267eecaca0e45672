using System.Diagnostics.CodeAnalysis;

namespace BuddySystem;

/// <summary>Throw helpers kept out of hot paths so the callers stay small and inlinable.</summary>
internal static class ThrowHelper
{
    internal static string Hex(ulong address) => "0x" + address.ToString("x", CultureInfo.InvariantCulture);

    [DoesNotReturn]
    internal static void ThrowAlignNotPowerOfTwo(nuint align)
        => throw new ArgumentException($"Alignment {align} is not a power of two.", "align");

    [DoesNotReturn]
    internal static void ThrowSizeOverflow(nuint size, nuint align)
        => throw new ArgumentException($"Size {size} rounded up to alignment {align} overflows.", "size");

    [DoesNotReturn]
    internal static void ThrowArgument(string message, string paramName)
        => throw new ArgumentException(message, paramName);

    [DoesNotReturn]
    internal static void ThrowInvalidOperation(string message)
        => throw new InvalidOperationException(message);

    [DoesNotReturn]
    internal static void ThrowNotSupported(string message)
        => throw new NotSupportedException(message);

    [DoesNotReturn]
    internal static void ThrowObjectDisposed(object instance)
        => throw new ObjectDisposedException(instance.GetType().FullName);

    [DoesNotReturn]
    internal static void ThrowCorruption(string message)
        => throw new HeapCorruptionException(message);
}
