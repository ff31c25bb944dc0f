using ResNet.Runtime;
using ResNet.Runtime.Images;

namespace ResNet.Native;

/// <summary>
/// A one-image run's tensor rows, handed to the network as the transform finishes them
/// (<see cref="GeneratedNetwork.StreamInputRows"/>), and conv1 run on them whenever the transform waits for the
/// decoder (<see cref="GeneratedNetwork.RunReadyBand"/>): never before a row the decoding's end waits for. Only on
/// the thread that loaded the network, which the run lends to the transform once the weights are in: the
/// network is never used by two threads, and rows made before it exists (or elsewhere) wait for the finishing
/// <see cref="GeneratedNetwork.RunStreamed"/>.
/// </summary>
internal sealed class StreamedRows : ITensorRows
{
    private GeneratedNetwork? _network;
    private int _thread;
    private float[]? _tensor;

    /// <summary>Rows given from now on, on this thread, go to <paramref name="network"/>.</summary>
    public void Start(GeneratedNetwork network)
    {
        network.BeginStreamedInput();
        _thread = Environment.CurrentManagedThreadId;
        Volatile.Write(ref _network, network);
    }

    public void Ready(float[] tensor, int rows)
    {
        if (Network() is not { } network) return;
        if (_tensor == null) _tensor = tensor;
        else if (_tensor != tensor) return;
        network.StreamInputRows(tensor, rows);
    }

    public bool WhileWaiting()
    {
        if (_tensor == null || Network() is not { } network || !network.RunReadyBand()) return false;
        Bands++;
        return true;
    }

    /// <summary>Bands of the first layer run while the image decoded (RESNET18_TIMING reports them).</summary>
    public int Bands { get; private set; }

    /// <summary>Whether <paramref name="tensor"/>'s rows went to the network, so that RunStreamed finishes its pass.</summary>
    public bool Holds(float[]? tensor) => tensor != null && _tensor == tensor;

    private GeneratedNetwork? Network() =>
        Volatile.Read(ref _network) is { } network && Environment.CurrentManagedThreadId == _thread ? network : null;
}
