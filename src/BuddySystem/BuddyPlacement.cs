namespace BuddySystem;

/// <summary>
/// Which free block a <see cref="BuddyTree"/> hands out when several could serve a request: the choice made at each
/// node on the way down the segment tree.
/// </summary>
public enum BuddyPlacement
{
    /// <summary>
    /// Descend into the child whose largest free block is the smallest that still fits; on a tie, the lower offset. Keeps
    /// large free blocks whole for large requests. The default.
    /// </summary>
    BestFit = 0,

    /// <summary>
    /// The seed's rule (rCore tutorial, chapter 4.2): try the right subtree first, then the left. Allocations gather at
    /// high offsets.
    /// </summary>
    RightFirst = 1,

    /// <summary>
    /// wuwenbin's buddy2.c: first fit, the left subtree whenever it can serve the request. It can split a large free block
    /// while an exact small one is free further right.
    /// </summary>
    LeftFirst = 2,
}
