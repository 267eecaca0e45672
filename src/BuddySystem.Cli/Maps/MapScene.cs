namespace BuddySystem.Cli.Maps;

/// <summary>
/// A picture as a list of rectangles, lines and texts in pixels, so one layout feeds both the SVG and the PNG writer.
/// Colours are <c>#rrggbb</c> strings.
/// </summary>
internal sealed class MapScene(double width)
{
    private readonly List<MapShape> _shapes = [];

    public double Width { get; } = width;

    /// <summary>The height the shapes reach, plus the bottom margin the layout asked for.</summary>
    public double Height { get; set; }

    public IReadOnlyList<MapShape> Shapes => _shapes;

    public void Rect(double x, double y, double width, double height, string fill, string? stroke = null, double strokeWidth = 1)
        => _shapes.Add(new MapShape(MapShapeKind.Rect, x, y, width, height, fill, stroke, strokeWidth));

    public void Line(double x1, double y1, double x2, double y2, string color, double width = 1)
        => _shapes.Add(new MapShape(MapShapeKind.Line, x1, y1, x2 - x1, y2 - y1, color, color, width));

    public void Text(double x, double y, string text, double size, string color, MapTextAnchor anchor = MapTextAnchor.Start, bool bold = false)
        => _shapes.Add(new MapShape(MapShapeKind.Text, x, y, 0, 0, color, Text: text, FontSize: size, Anchor: anchor, Bold: bold));
}
