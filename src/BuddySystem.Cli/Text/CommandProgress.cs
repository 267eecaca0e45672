namespace BuddySystem.Cli.Text;

/// <summary>
/// The progress display of every long command (bench, replay, soak, stress, map and explore on a trace): Spectre's
/// progress bars on a terminal, nothing at all when the output is redirected or the console is not interactive, so logs
/// and pipes get only the results.
/// </summary>
internal static class CommandProgress
{
    /// <summary>Whether <paramref name="console"/> shows progress: an interactive console writing to a terminal.</summary>
    public static bool IsShown(IAnsiConsole console) => console.Profile.Capabilities.Interactive && console.Profile.Out.IsTerminal;

    /// <summary>Runs <paramref name="work"/> under a progress display with description, bar, percentage and elapsed time.</summary>
    /// <param name="console">Where the display goes when <see cref="IsShown"/>; otherwise the tasks are kept but never drawn.</param>
    /// <param name="work">Adds its tasks to the context and advances them.</param>
    /// <param name="keep">Whether the finished bars stay on screen (a table of runs) or vanish before the results are printed.</param>
    public static void Start(IAnsiConsole console, Action<ProgressContext> work, bool keep = false)
        => Start<bool>(console, context => { work(context); return true; }, keep);

    /// <summary>Runs <paramref name="work"/> under a progress display and returns its result; see <see cref="Start(IAnsiConsole, Action{ProgressContext}, bool)"/>.</summary>
    public static T Start<T>(IAnsiConsole console, Func<ProgressContext, T> work, bool keep = false)
    {
        // Spectre's fallback for a console that is not a terminal prints every update as a line; a console over
        // TextWriter.Null keeps the same task API and draws nothing.
        IAnsiConsole target = IsShown(console) ? console : AnsiConsole.Create(new AnsiConsoleSettings { Out = new AnsiConsoleOutput(TextWriter.Null), Interactive = InteractionSupport.No });
        Progress progress = target.Progress()
            .AutoClear(!keep)
            .HideCompleted(false)
            .Columns(new TaskDescriptionColumn { Alignment = Justify.Left }, new ProgressBarColumn(), new PercentageColumn(), new ElapsedTimeColumn());

        // Refreshed four times a second: the renderer thread competes with the measured loops for the cores, so it
        // should wake rarely.
        progress.RefreshRate = TimeSpan.FromMilliseconds(250);
        return progress.Start(work);
    }

    /// <summary>Runs <paramref name="work"/> over <paramref name="items"/> (a trace's operations, say) with one bar that
    /// advances as the items are read, on <paramref name="console"/> (the standard one by default) when it is a terminal.</summary>
    public static TResult Over<TItem, TResult>(string description, long total, IEnumerable<TItem> items, Func<IEnumerable<TItem>, TResult> work, IAnsiConsole? console = null)
        => Start(console ?? AnsiConsole.Console, context => work(Track(items, context.AddTask(description, maxValue: Math.Max(total, 1)))));

    /// <summary>Passes <paramref name="items"/> through, advancing <paramref name="task"/> by one per item (set every
    /// 4 096 items, so a long trace costs no display work per operation).</summary>
    public static IEnumerable<T> Track<T>(IEnumerable<T> items, ProgressTask task)
    {
        long count = 0;
        foreach (T item in items)
        {
            yield return item;
            if ((++count & 4095) == 0)
            {
                task.Value = count;
            }
        }

        task.Value = task.MaxValue;
    }
}
