using System.Globalization;

namespace BuddySystem.Cli.Maps;

/// <summary>Parses a heap size from the command line: <c>4096</c>, <c>64B</c>, <c>512K</c>, <c>512KiB</c>, <c>8M</c>, <c>1GiB</c>.</summary>
internal static class ByteSize
{
    public static bool TryParse(string? text, out ulong bytes)
    {
        bytes = 0;
        if (string.IsNullOrWhiteSpace(text))
        {
            return false;
        }

        string trimmed = text.Trim();
        int digits = 0;
        while (digits < trimmed.Length && char.IsAsciiDigit(trimmed[digits]))
        {
            digits++;
        }

        if (digits == 0 || !ulong.TryParse(trimmed.AsSpan(0, digits), NumberStyles.None, CultureInfo.InvariantCulture, out ulong number))
        {
            return false;
        }

        int shift = trimmed[digits..].Trim().ToUpperInvariant() switch
        {
            "" or "B" => 0,
            "K" or "KB" or "KIB" => 10,
            "M" or "MB" or "MIB" => 20,
            "G" or "GB" or "GIB" => 30,
            _ => -1,
        };
        if (shift < 0 || number > ulong.MaxValue >> shift)
        {
            return false;
        }

        bytes = number << shift;
        return true;
    }
}
