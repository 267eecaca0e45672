namespace BuddySystem.Cli.Maps;

/// <summary>
/// One primitive of a <see cref="MapScene"/>. Rect: X, Y, Width, Height, Fill, optional Stroke. Line: X, Y to X2, Y2 in
/// Stroke, StrokeWidth. Text: baseline at X, Y, FontSize, Fill, Anchor, Bold.
/// </summary>
internal readonly record struct MapShape(
    MapShapeKind Kind,
    double X,
    double Y,
    double Width,
    double Height,
    string Fill,
    string? Stroke = null,
    double StrokeWidth = 1,
    string? Text = null,
    double FontSize = 12,
    MapTextAnchor Anchor = MapTextAnchor.Start,
    bool Bold = false)
{
    public double X2 => X + Width;

    public double Y2 => Y + Height;
}
