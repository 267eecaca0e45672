namespace BuddySystem.Cli.Maps;

/// <summary>The three primitives a heap map is drawn with.</summary>
internal enum MapShapeKind
{
    Rect,
    Line,
    Text,
}
