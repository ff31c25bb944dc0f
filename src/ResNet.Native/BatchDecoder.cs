using System.Diagnostics;

namespace ResNet.Native;

/// <summary>A decoded input tensor, or why there is none.</summary>
internal readonly record struct Decoded(float[]? Input, Exception? Error);

/// <summary>
/// Decodes the command's inputs a batch at a time on the thread pool: the files of one batch on up to
/// <paramref name="threads"/> cores at once (so that many full-size images are in memory together), each to
/// its tensor or to the reason it failed, in order.
/// </summary>
internal sealed class BatchDecoder(IReadOnlyList<string> files, int batch, int threads, Func<string, float[]> load, Timing timing)
{
    /// <summary>Files [<paramref name="first"/>, +batch), decoding in the background.</summary>
    public Task<Decoded[]> Decode(int first) => Task.Run(() =>
    {
        var decoded = new Decoded[Math.Min(batch, files.Count - first)];
        void DecodeOne(int k)
        {
            long start = Stopwatch.GetTimestamp();
            try
            {
                decoded[k] = new Decoded(load(files[first + k]), null);
            }
            catch (Exception e)
            {
                decoded[k] = new Decoded(null, e);
            }
            timing.Background("decode and preprocess", Stopwatch.GetElapsedTime(start));
        }
        if (decoded.Length == 1) DecodeOne(0); // a one-image run has no use for Parallel's set-up (~0.5 ms cold)
        else Parallel.For(0, decoded.Length, new ParallelOptions { MaxDegreeOfParallelism = threads }, DecodeOne);
        return decoded;
    });
}
