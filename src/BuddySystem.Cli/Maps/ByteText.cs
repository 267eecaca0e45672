using System.Globalization;

namespace BuddySystem.Cli.Maps;

/// <summary>Byte counts as people read them on a map: "8 MiB", "1.5 KiB", or compact "8M" where columns are narrow.</summary>
internal static class ByteText
{
    private static readonly string[] s_units = ["B", "KiB", "MiB", "GiB", "TiB"];
    private static readonly string[] s_shortUnits = ["B", "K", "M", "G", "T"];

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
