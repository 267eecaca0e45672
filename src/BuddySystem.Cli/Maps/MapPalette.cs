using BuddySystem.Diagnostics;

namespace BuddySystem.Cli.Maps;

/// <summary>
/// Colours of the map: one hue per block state, shaded by order (small orders dark so thin blocks stay visible, large
/// orders light). Shared by the picture and its legend so they cannot disagree.
/// </summary>
internal static class MapPalette
{
    public const string Text = "#222222";
    public const string Muted = "#666666";
    public const string Grid = "#bbbbbb";
    public const string Unmanaged = "#e6e6e6";
    public const string Split = "#f3f3f3";
    public const string IndexBar = "#d95f02";

    public static string For(BlockState state, double shade) => state switch
    {
        BlockState.Allocated => Mix(0xb2182b, 0xf4a582, shade),
        BlockState.Free => Mix(0x1b7837, 0xa6dba0, shade),
        BlockState.Cached => Mix(0x5e3c99, 0xb2abd2, shade),
        _ => Mix(0x4d4d4d, 0xbababa, shade),
    };

    /// <summary>The label colour that reads on top of <see cref="For"/> at this shade.</summary>
    public static string LabelOn(double shade) => shade < 0.55 ? "#ffffff" : Text;

    /// <summary>0 for the smallest order, 1 for the largest.</summary>
    public static double Shade(int order, int orderCount) => orderCount <= 1 ? 0.5 : (double)order / (orderCount - 1);

    public static string Name(BlockState state) => state switch
    {
        BlockState.Allocated => "allocated",
        BlockState.Free => "free",
        BlockState.Cached => "cached (freed, parked in a lazy cache)",
        _ => "unknown state",
    };

    private static string Mix(int dark, int light, double t)
    {
        t = Math.Clamp(t, 0, 1);
        int Channel(int shift) => (int)Math.Round((((dark >> shift) & 0xff) * (1 - t)) + (((light >> shift) & 0xff) * t));
        return "#" + ((Channel(16) << 16) | (Channel(8) << 8) | Channel(0)).ToString("x6", CultureInfo.InvariantCulture);
    }
}
