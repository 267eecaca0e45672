using System.Globalization;
using System.Security;
using System.Text;

namespace BuddySystem.Cli.Maps;

/// <summary>Writes a <see cref="MapScene"/> as hand-written SVG text: small, crisp, and diffable.</summary>
internal static class SvgMapWriter
{
    public static string Write(MapScene scene)
    {
        var svg = new StringBuilder();
        svg.Append(CultureInfo.InvariantCulture, $"<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{N(scene.Width)}\" height=\"{N(scene.Height)}\" viewBox=\"0 0 {N(scene.Width)} {N(scene.Height)}\" font-family=\"DejaVu Sans, Verdana, sans-serif\">\n");
        svg.Append(CultureInfo.InvariantCulture, $"<rect width=\"{N(scene.Width)}\" height=\"{N(scene.Height)}\" fill=\"#ffffff\"/>\n");
        foreach (MapShape shape in scene.Shapes)
        {
            switch (shape.Kind)
            {
                case MapShapeKind.Rect:
                    svg.Append(CultureInfo.InvariantCulture, $"<rect x=\"{N(shape.X)}\" y=\"{N(shape.Y)}\" width=\"{N(shape.Width)}\" height=\"{N(shape.Height)}\" fill=\"{shape.Fill}\"");
                    if (shape.Stroke != null)
                    {
                        svg.Append(CultureInfo.InvariantCulture, $" stroke=\"{shape.Stroke}\" stroke-width=\"{N(shape.StrokeWidth)}\"");
                    }

                    svg.Append("/>\n");
                    break;
                case MapShapeKind.Line:
                    svg.Append(CultureInfo.InvariantCulture, $"<line x1=\"{N(shape.X)}\" y1=\"{N(shape.Y)}\" x2=\"{N(shape.X2)}\" y2=\"{N(shape.Y2)}\" stroke=\"{shape.Stroke}\" stroke-width=\"{N(shape.StrokeWidth)}\"/>\n");
                    break;
                default:
                    string anchor = shape.Anchor switch { MapTextAnchor.Middle => " text-anchor=\"middle\"", MapTextAnchor.End => " text-anchor=\"end\"", _ => string.Empty };
                    string weight = shape.Bold ? " font-weight=\"bold\"" : string.Empty;
                    svg.Append(CultureInfo.InvariantCulture, $"<text x=\"{N(shape.X)}\" y=\"{N(shape.Y)}\" font-size=\"{N(shape.FontSize)}\" fill=\"{shape.Fill}\"{anchor}{weight}>{SecurityElement.Escape(shape.Text)}</text>\n");
                    break;
            }
        }

        svg.Append("</svg>\n");
        return svg.ToString();
    }

    private static string N(double value) => value.ToString("0.##", CultureInfo.InvariantCulture);
}
