namespace BuddySystem.Cli.Maps;

/// <summary>Which point of a text its x coordinate names (SVG's <c>text-anchor</c>).</summary>
internal enum MapTextAnchor
{
    Start,
    Middle,
    End,
}
