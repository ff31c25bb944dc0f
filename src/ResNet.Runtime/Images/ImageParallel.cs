using System.Runtime.ExceptionServices;

namespace ResNet.Runtime.Images;

/// <summary>
/// Splits the row loops of decoding and resizing across the cores when an image is large enough to repay it: a
/// 12-megapixel photo spends tens of milliseconds in them, on the critical path of a one-image run, while the
/// other core has nothing to do. Every row is computed exactly as on one thread, so the output is the same bytes.
/// A thread that would otherwise wait for the image can also lend itself (<see cref="Lend"/>); row loops then
/// split with it even when they are too small for <see cref="Parallel"/>'s start-up (~0.5 ms cold).
/// </summary>
internal static class ImageParallel
{
    /// <summary>Below this much work (in inner-loop steps) one thread is faster than handing out chunks (tests lower it).</summary>
    internal static long MinWork = 2_000_000;

    /// <summary>
    /// Whether this much work (in inner-loop steps) is worth a second core: not while every core is already
    /// decoding an image of its own (the CLI decodes a batch's files in parallel), where splitting one image only
    /// adds threads. Tests that force splitting (<see cref="MinWork"/> 0) get it whatever else is decoding.
    /// </summary>
    public static bool Worthwhile(long work) =>
        work >= MinWork && Environment.ProcessorCount > 1 && (MinWork == 0 || Volatile.Read(ref s_decoding) < Environment.ProcessorCount);

    /// <summary>Images being decoded right now (<see cref="ImageDecoder.Decode(byte[], string, long)"/>).</summary>
    private static int s_decoding;

    /// <summary>Counts an image as being decoded until disposed.</summary>
    public static DecodingScope Decoding()
    {
        Interlocked.Increment(ref s_decoding);
        return default;
    }

    /// <summary>One image's decoding, counted until disposed (once).</summary>
    public readonly struct DecodingScope : IDisposable
    {
        public void Dispose() => Interlocked.Decrement(ref s_decoding);
    }

    /// <summary>Threads inside <see cref="Lend"/>, the row loop they may join, work they may take whole, and what wakes them.</summary>
    private static int _lenders;
    private static Job? _shared;
    private static Task? _whole;
    private static int _signals;
    private static readonly object Gate = new();

    /// <summary>
    /// Wakes every lent thread to look again. A count, not an event to reset: with two threads lent (the CLI's
    /// main thread running offered work, the decoding thread helping with its row loops) one's reset lost the
    /// other's wake-up, and both waited for ever.
    /// </summary>
    private static void Signal()
    {
        lock (Gate)
        {
            _signals++;
            Monitor.PulseAll(Gate);
        }
    }

    /// <summary>Tests: <see cref="Offer"/> returns only once a lent thread took the work (else a small image's scan may end first).</summary>
    internal static bool OffersWaitForALender;

    /// <summary>Offered work that lent threads took (tests count it).</summary>
    internal static int WholeRuns;

    /// <summary>Whether a thread is lent (tests wait for it).</summary>
    internal static bool Lending => Volatile.Read(ref _lenders) > 0;

    /// <summary>Chunks per core for <see cref="Parallel"/>, and chunks of a loop shared with lent threads.</summary>
    private const int ChunksPerCore = 4, LentChunks = 8;

    /// <summary>The most chunks <see cref="ForRows"/> cuts <paramref name="rows"/> into (a caller whose chunks each hold a buffer bounds their memory with it).</summary>
    public static int MostChunks(int rows) => Math.Min(rows, Math.Max(ChunksPerCore * Environment.ProcessorCount, LentChunks));

    /// <summary>Runs <paramref name="body"/>(from, to) over [0, rows) in contiguous chunks, in parallel when worth it.</summary>
    public static void ForRows(int rows, long workPerRow, Action<int, int> body)
    {
        if (Worthwhile(rows * workPerRow))
        {
            int chunks = Math.Min(rows, ChunksPerCore * Environment.ProcessorCount);
            Parallel.For(0, chunks, c => body((int)((long)rows * c / chunks), (int)((long)rows * (c + 1) / chunks)));
        }
        else if (Volatile.Read(ref _lenders) > 0 && rows >= 2)
        {
            var job = new Job(body, rows, Math.Min(rows, LentChunks));
            Volatile.Write(ref _shared, job);
            Signal();
            job.RunChunks();
            Interlocked.CompareExchange(ref _shared, null, job);
            job.Wait();
        }
        else
        {
            body(0, rows);
        }
    }

    /// <summary>
    /// Takes chunks of other threads' row loops until <paramref name="task"/> completes, blocked in between (so a
    /// large image's <see cref="Parallel"/> loops and IDCT thread keep the cores).
    /// </summary>
    public static void Lend(Task task)
    {
        Interlocked.Increment(ref _lenders);
        try
        {
            task.ContinueWith(_ => Signal(), CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
            while (true)
            {
                // Read before looking, so that whatever signals after the look is seen; a task completes before
                // its continuation signals.
                int seen = Volatile.Read(ref _signals);
                if (task.IsCompleted) break;
                if (Interlocked.Exchange(ref _whole, null) is Task whole)
                {
                    Interlocked.Increment(ref WholeRuns);
                    whole.RunSynchronously();
                    continue;
                }
                if (Volatile.Read(ref _shared) is Job job)
                {
                    job.RunChunks();
                    continue;
                }
                if (!SignalledWithin(seen, SpinTicks))
                    lock (Gate)
                        while (_signals == seen) Monitor.Wait(Gate);
            }
        }
        finally
        {
            Interlocked.Decrement(ref _lenders);
        }
    }

    /// <summary>
    /// How long a lent thread with nothing to take spins before it blocks: the next signal is often microseconds
    /// away (the offered work's end, which the decoding thread waits for; then the decoding's, which the lent thread
    /// waits for), and a blocked thread woken here came back 20–50 µs later, on a one-image run's critical path.
    /// </summary>
    private static readonly long SpinTicks = System.Diagnostics.Stopwatch.Frequency / 20_000; // 50 µs

    /// <summary>Spins until <see cref="_signals"/> moves past <paramref name="seen"/> (true) or <paramref name="ticks"/> pass (false).</summary>
    private static bool SignalledWithin(int seen, long ticks)
    {
        long until = System.Diagnostics.Stopwatch.GetTimestamp() + ticks;
        do
        {
            if (Volatile.Read(ref _signals) != seen) return true;
            Thread.SpinWait(16);
        }
        while (System.Diagnostics.Stopwatch.GetTimestamp() < until);
        return false;
    }

    /// <summary>
    /// Offers <paramref name="work"/> to a thread that is or will be lent (<see cref="Lend"/>), which runs it whole,
    /// while the caller goes on (decoding the rows the work reads, <see cref="RowProgress"/>); one offer at a time,
    /// so null if another is pending. The caller must <see cref="Collect"/> it.
    /// </summary>
    public static Task<T>? Offer<T>(Func<T> work)
    {
        var task = new Task<T>(work);
        if (Interlocked.CompareExchange(ref _whole, task, null) != null) return null;
        Signal();
        if (OffersWaitForALender) SpinWait.SpinUntil(() => Volatile.Read(ref _whole) != task, TimeSpan.FromSeconds(10));
        return task;
    }

    /// <summary>
    /// The offered work's result: run here if no lent thread took it, else this thread takes part in its row loops
    /// until it completes. Rethrows what the work threw.
    /// </summary>
    public static T Collect<T>(Task<T> offered)
    {
        if (Withdraw(offered)) offered.RunSynchronously();
        else Lend(offered);
        return offered.GetAwaiter().GetResult();
    }

    /// <summary>
    /// Runs offered work no lent thread has taken yet on a thread of its own, for a decoder whose offering thread is
    /// busy with something the work must run beside (a PNG's inflating, which the work's unfiltering follows). The
    /// offering thread's <see cref="Collect"/> then waits for it, as for a lent thread.
    /// </summary>
    public static void StartOfferedWork()
    {
        if (Interlocked.Exchange(ref _whole, null) is Task whole)
            Task.Factory.StartNew(whole.RunSynchronously, CancellationToken.None, TaskCreationOptions.LongRunning, TaskScheduler.Default);
    }

    /// <summary>Takes back offered work no lent thread has taken (true), or finds it taken and running there (false).</summary>
    public static bool Withdraw(Task offered) => Interlocked.CompareExchange(ref _whole, null, offered) == offered;

    /// <summary>One row loop cut into chunks that any thread may take; the owner waits until all are done.</summary>
    private sealed class Job(Action<int, int> body, int rows, int chunks)
    {
        private int _next = -1, _done;
        private ExceptionDispatchInfo? _error;

        public void RunChunks()
        {
            for (int c; (c = Interlocked.Increment(ref _next)) < chunks;)
            {
                try
                {
                    body((int)((long)rows * c / chunks), (int)((long)rows * (c + 1) / chunks));
                }
                catch (Exception e)
                {
                    Interlocked.CompareExchange(ref _error, ExceptionDispatchInfo.Capture(e), null);
                }
                Interlocked.Increment(ref _done);
            }
        }

        public void Wait()
        {
            var spin = new SpinWait();
            while (Volatile.Read(ref _done) < chunks) spin.SpinOnce(sleep1Threshold: -1);
            _error?.Throw();
        }
    }
}
