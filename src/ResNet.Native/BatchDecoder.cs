using System.Diagnostics;
using ResNet.Runtime;
using ResNet.Runtime.Images;

namespace ResNet.Native;

/// <summary>A decoded input tensor, or why there is none.</summary>
internal readonly record struct Decoded(float[]? Input, Exception? Error);

/// <summary>
/// Decodes the command's inputs a batch at a time in the background: the files of one batch on up to
/// <paramref name="threads"/> cores at once (so that many full-size images are in memory together), each to
/// its tensor or to the reason it failed, in order.
/// </summary>
internal sealed class BatchDecoder(IReadOnlyList<string> files, int batch, int threads, Func<string, float[]> load, Timing timing, WorkerPool? workers)
{
    /// <summary>
    /// Files [<paramref name="first"/>, +batch), decoding in the background: the first batch on the network's
    /// worker thread, idle until the first layer and already running (starting a thread — the thread pool's first —
    /// kept the loading thread that started it off a core for 1–2 ms: `dog.jpg` 13.8 → 12.5 ms, a `.npy` 11.4 →
    /// 10.6); each later one once the network has run the one before, on the caller and that worker (two threads)
    /// or on the thread pool. Not a PNG that starts with one: its decoding
    /// starts a thread to inflate on, which on the worker, the loading holding the other core, waited in turn
    /// (`dog.png` 16.0 → 16.7 ms).
    /// </summary>
    public Task<Decoded[]> Decode(int first) =>
        first == 0 && workers != null && !IsPng(files[0]) ? workers.RunOnWorker(() => DecodeBatch(first))
        : first > 0 && workers is { Threads: 2 } ? Task.FromResult(DecodeWithWorker(first))
        : Task.Run(() => DecodeBatch(first));

    /// <summary>
    /// A later batch on the calling thread, which would only wait for it, and the network's worker, idle between
    /// batches and still polling after the last one, each taking the next file: no thread-pool thread to wake or
    /// start (30 copies of a 768×576 photo, two alternating sets: 317 → 297 and 311 → 298 ms).
    /// </summary>
    private Decoded[] DecodeWithWorker(int first)
    {
        var decoded = new Decoded[Math.Min(batch, files.Count - first)];
        int next = -1;
        void Take()
        {
            for (int k; (k = Interlocked.Increment(ref next)) < decoded.Length;) decoded[k] = DecodeOne(first + k);
        }
        var helper = workers!.RunOnWorker(() => { Take(); return true; });
        Take();
        helper.GetAwaiter().GetResult();
        return decoded;
    }

    private Decoded DecodeOne(int file)
    {
        long start = Stopwatch.GetTimestamp();
        try
        {
            return new Decoded(load(files[file]), null);
        }
        catch (Exception e)
        {
            return new Decoded(null, e);
        }
        finally
        {
            timing.Background("decode and preprocess", Stopwatch.GetElapsedTime(start));
        }
    }

    private static bool IsPng(string file)
    {
        // Not read here for a stream: it can be read once only, this runs before the weights load, and a pipe may be slow to fill.
        if (StreamInput.Is(file)) return false;
        Span<byte> head = stackalloc byte[8];
        return FileHead.Read(file, head) == 8 && ImageDecoder.Format(head) == "PNG";
    }

    private Decoded[] DecodeBatch(int first)
    {
        var decoded = new Decoded[Math.Min(batch, files.Count - first)];
        if (decoded.Length == 1) decoded[0] = DecodeOne(first); // a one-image run has no use for Parallel's set-up (~0.5 ms cold)
        else Parallel.For(0, decoded.Length, new ParallelOptions { MaxDegreeOfParallelism = threads }, k => decoded[k] = DecodeOne(first + k));
        return decoded;
    }
}
