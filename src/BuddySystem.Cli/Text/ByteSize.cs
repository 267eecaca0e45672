using System.Globalization;

namespace BuddySystem.Cli.Text;

/// <summary>
/// A byte count as the command line reads and writes it: parsed from <c>4096</c>, <c>64B</c>, <c>512K</c>,
/// <c>512KiB</c>, <c>8M</c>, <c>1GiB</c> (binary units, case-insensitive), written as "8 MiB", "1.5 KiB" or "8M".
/// </summary>
/// <param name="Bytes">The number of bytes.</param>
internal readonly record struct ByteSize(ulong Bytes)
{
    private static readonly string[] s_units = ["B", "KiB", "MiB", "GiB", "TiB"];
    private static readonly string[] s_shortUnits = ["B", "K", "M", "G", "T"];

    /// <summary>Reads a size: digits, then optionally B, K/KB/KiB, M/MB/MiB, G/GB/GiB, T/TB/TiB; false when malformed or above 2^64.</summary>
    public static bool TryParse(string? text, out ByteSize size)
    {
        size = default;
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
            "T" or "TB" or "TIB" => 40,
            _ => -1,
        };
        if (shift < 0 || number > ulong.MaxValue >> shift)
        {
            return false;
        }

        size = new ByteSize(number << shift);
        return true;
    }

    /// <summary>"8 MiB": exact, in the largest unit that keeps a whole number; see <see cref="Long"/>.</summary>
    public override string ToString() => Long(Bytes);

    /// <summary>"8 MiB"; a size that is not a whole number of its unit is written in the largest unit that makes it one
    /// ("8190 KiB"), or else rounded ("≈ 7.99 MiB"), so a map never shows 8 MiB − 2 KiB as "8 MiB".</summary>
    public static string Long(ulong bytes)
    {
        int unit = 0;
        while (unit < s_units.Length - 1 && bytes >> ((unit + 1) * 10) != 0 && bytes % (1UL << ((unit + 1) * 10)) == 0)
        {
            unit++;
        }

        ulong whole = bytes >> (unit * 10);
        return whole < 10_000
            ? whole.ToString(CultureInfo.InvariantCulture) + " " + s_units[unit]
            : "≈ " + Format(bytes, s_units, " ");
    }

    /// <summary>"1.5 KiB": rounded to two decimals in the largest unit below the value, for tables of measurements.</summary>
    public static string Rounded(ulong bytes) => Format(bytes, s_units, " ");

    /// <summary>"8M": compact, for narrow columns.</summary>
    public static string Short(ulong bytes) => Format(bytes, s_shortUnits, string.Empty);

    private static string Format(ulong bytes, string[] units, string separator)
    {
        int unit = 0;
        double value = bytes;
        while (value >= 1024 && unit < units.Length - 1)
        {
            value /= 1024;
            unit++;
        }

        string number = value == Math.Floor(value) ? value.ToString("0", CultureInfo.InvariantCulture) : value.ToString("0.##", CultureInfo.InvariantCulture);
        return number + separator + units[unit];
    }
}
