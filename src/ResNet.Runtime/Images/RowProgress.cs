namespace ResNet.Runtime.Images;

/// <summary>
/// How many of an image's rows are final while its decoder still produces them (a JPEG's one sequential scan; a
/// PNG's scanlines as they inflate), so that another thread can convert and resize the rows behind the decoding
/// instead of after it. A reader waits for the rows it needs, spinning: the decoder publishes every MCU row (16 image
/// rows, ~0.06 ms for a 768-pixel-wide photo) or every 64 KiB inflated, and the reader is a thread that would
/// otherwise only wait.
/// </summary>
internal sealed class RowProgress
{
    private int _ready;
    private bool _failed;

    /// <summary>Rows [0, <paramref name="rows"/>) are final.</summary>
    public void Publish(int rows) => Volatile.Write(ref _ready, rows);

    /// <summary>The decoding failed: readers stop waiting (and fail; the decoder reports the reason).</summary>
    public void Fail() => Volatile.Write(ref _failed, true);

    /// <summary>
    /// Work this thread does instead of spinning while it waits for rows (<see cref="ITensorRows.WhileWaiting"/>):
    /// true when it did some, and will be asked again before the next spin.
    /// </summary>
    [ThreadStatic]
    internal static Func<bool>? WhileWaiting;

    /// <summary>Returns once rows [0, <paramref name="rows"/>) are final; throws if the decoding failed first.</summary>
    public void WaitFor(int rows)
    {
        var spin = new SpinWait();
        while (Volatile.Read(ref _ready) < rows)
        {
            if (Volatile.Read(ref _failed)) throw new InputException("the image's decoding failed");
            if (WhileWaiting?.Invoke() == true) continue;
            spin.SpinOnce(sleep1Threshold: -1);
        }
    }
}
