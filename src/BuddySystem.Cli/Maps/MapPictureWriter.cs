using SkiaSharp;

namespace BuddySystem.Cli.Maps;

/// <summary>Draws a <see cref="MapScene"/> once with SkiaSharp, on a raster surface for PNG or on
/// <see cref="SKSvgCanvas"/> for SVG, so the two formats cannot drift apart.</summary>
internal static class MapPictureWriter
{
    // The NoDependencies native build has no fontconfig, so a family name may not resolve: try common font files too.
    private static readonly string[] s_fontFiles =
    [
        "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
        "/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf",
        "/usr/share/fonts/TTF/DejaVuSans.ttf",
        "/Library/Fonts/Arial.ttf",
        "C:\\Windows\\Fonts\\arial.ttf",
    ];

    private static readonly string[] s_boldFontFiles =
    [
        "/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf",
        "/usr/share/fonts/truetype/liberation/LiberationSans-Bold.ttf",
        "/usr/share/fonts/TTF/DejaVuSans-Bold.ttf",
        "/Library/Fonts/Arial Bold.ttf",
        "C:\\Windows\\Fonts\\arialbd.ttf",
    ];

    /// <summary>Writes the scene as SVG (Skia's SVG canvas: the same drawing as the PNG).</summary>
    public static void WriteSvg(MapScene scene, Stream output)
    {
        using (var managed = new SKManagedWStream(output))
        using (SKCanvas canvas = SKSvgCanvas.Create(SKRect.Create((float)scene.Width, (float)scene.Height), managed))
        {
            Draw(scene, canvas);
        }

        output.Flush();
    }

    /// <summary>The scene as SVG text.</summary>
    public static string Svg(MapScene scene)
    {
        using var buffer = new MemoryStream();
        WriteSvg(scene, buffer);
        return System.Text.Encoding.UTF8.GetString(buffer.ToArray());
    }

    /// <summary>Writes the scene as PNG at <paramref name="scale"/> device pixels per map pixel (2 keeps text sharp on dense screens).</summary>
    public static void WritePng(MapScene scene, Stream output, float scale = 2)
    {
        var info = new SKImageInfo((int)Math.Ceiling(scene.Width * scale), (int)Math.Ceiling(scene.Height * scale));
        using var surface = SKSurface.Create(info);
        surface.Canvas.Scale(scale);
        Draw(scene, surface.Canvas);
        using SKImage image = surface.Snapshot();
        using SKData png = image.Encode(SKEncodedImageFormat.Png, 100);
        png.SaveTo(output);
    }

    /// <summary>Draws the scene once, on any canvas: the one rendering behind both formats.</summary>
    private static void Draw(MapScene scene, SKCanvas canvas)
    {
        using SKTypeface regular = LoadTypeface(s_fontFiles, SKFontStyle.Normal);
        using SKTypeface bold = LoadTypeface(s_boldFontFiles, SKFontStyle.Bold);
        using var paint = new SKPaint { IsAntialias = true, Color = SKColors.White, Style = SKPaintStyle.Fill };
        canvas.DrawRect(SKRect.Create((float)scene.Width, (float)scene.Height), paint);
        foreach (MapShape shape in scene.Shapes)
        {
            switch (shape.Kind)
            {
                case MapShapeKind.Rect:
                    var rect = SKRect.Create((float)shape.X, (float)shape.Y, (float)shape.Width, (float)shape.Height);
                    paint.Style = SKPaintStyle.Fill;
                    paint.Color = SKColor.Parse(shape.Fill);
                    canvas.DrawRect(rect, paint);
                    if (shape.Stroke != null)
                    {
                        paint.Style = SKPaintStyle.Stroke;
                        paint.StrokeWidth = (float)shape.StrokeWidth;
                        paint.Color = SKColor.Parse(shape.Stroke);
                        canvas.DrawRect(rect, paint);
                    }

                    break;
                case MapShapeKind.Line:
                    paint.Style = SKPaintStyle.Stroke;
                    paint.StrokeWidth = (float)shape.StrokeWidth;
                    paint.Color = SKColor.Parse(shape.Stroke);
                    canvas.DrawLine((float)shape.X, (float)shape.Y, (float)shape.X2, (float)shape.Y2, paint);
                    break;
                default:
                    paint.Style = SKPaintStyle.Fill;
                    paint.Color = SKColor.Parse(shape.Fill);
                    using (var font = new SKFont(shape.Bold ? bold : regular, (float)shape.FontSize))
                    {
                        SKTextAlign align = shape.Anchor switch { MapTextAnchor.Middle => SKTextAlign.Center, MapTextAnchor.End => SKTextAlign.Right, _ => SKTextAlign.Left };
                        canvas.DrawText(shape.Text ?? string.Empty, (float)shape.X, (float)shape.Y, align, font, paint);
                    }

                    break;
            }
        }
    }

    /// <summary>How wide <paramref name="shape"/>'s text is drawn, in map pixels, with the typeface the picture uses (for
    /// the test that no text runs past the picture's edge).</summary>
    internal static double TextWidth(MapShape shape)
    {
        using SKTypeface typeface = shape.Bold ? LoadTypeface(s_boldFontFiles, SKFontStyle.Bold) : LoadTypeface(s_fontFiles, SKFontStyle.Normal);
        using var font = new SKFont(typeface, (float)shape.FontSize);
        return font.MeasureText(shape.Text ?? string.Empty);
    }

    private static SKTypeface LoadTypeface(string[] files, SKFontStyle style)
    {
        foreach (string file in files)
        {
            if (File.Exists(file))
            {
                SKTypeface? typeface = SKTypeface.FromFile(file);
                if (typeface != null)
                {
                    return typeface;
                }
            }
        }

        return SKTypeface.FromFamilyName("DejaVu Sans", style) ?? SKTypeface.Default;
    }
}
