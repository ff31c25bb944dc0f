using System.Runtime.CompilerServices;

namespace ResNet.Runtime;

/// <summary>
/// One image whose input arrives top to bottom, as a decoder produces it: the first layer can run on each band of
/// rows whose input is in (<see cref="IsaLayout.Bands"/>), on the calling thread, while the rest arrives. A
/// one-image run of the CLI so moves most of conv1 off its critical path: the image's decoding holds one core
/// for ~2 ms after the weights are in, and the thread that resizes its rows behind it waits for rows in between.
/// The same kernels run on the same items, so the logits are Run's, bit for bit.
/// </summary>
public abstract unsafe partial class GeneratedNetwork
{
    /// <summary>Input rows packed of the image being streamed; -1 when none is.</summary>
    private int _streamedRows = -1;

    /// <summary>The first layer's work items done for it.</summary>
    private int _streamedItems;

    /// <summary>While <see cref="_bandEnd"/> is positive, RunKernel runs items [begin, end) alone, here: a band of the first layer.</summary>
    private int _bandBegin, _bandEnd;

    /// <summary>Work items the next kernel leaves out: the first layer's, done while its input arrived.</summary>
    private int _skipItems;

    /// <summary>
    /// Starts a one-image pass whose input is given a few rows at a time (<see cref="StreamInputRows"/>), the first
    /// layer running on the rows already given whenever the caller has time (<see cref="RunReadyBand"/>), and
    /// finished by <see cref="RunStreamed"/>. A later Begin or Run abandons it.
    /// </summary>
    public void BeginStreamedInput()
    {
        lock (_turn)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            MapThreadMemory();
            if (_zeroInputHalo) ZeroHalo(_inputLayout.Buffer, 1);
            _streamedRows = 0;
            _streamedItems = 0;
        }
    }

    /// <summary>
    /// Rows [0, <paramref name="rows"/>) of every channel of <paramref name="image"/> (one image, C×H×W) hold their
    /// final values: packs the new ones. Calls give the same <paramref name="image"/> and never fewer rows than
    /// before. Allocates nothing.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public void StreamInputRows(ReadOnlySpan<float> image, int rows)
    {
        lock (_turn)
        {
            CheckStreamed(image);
            if (rows < _streamedRows || rows > Info.Input.H)
                throw new ArgumentOutOfRangeException(nameof(rows), $"{rows} rows: expected {_streamedRows}…{Info.Input.H}, never fewer than the last call's");
            PackRows(image, 0, _streamedRows, rows);
            _streamedRows = rows;
        }
    }

    /// <summary>
    /// Runs, on this thread, the first layer's next band of rows if the rows given so far hold all its input;
    /// false when none is ready (or the first layer does not run in bands). Allocates nothing.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public bool RunReadyBand()
    {
        lock (_turn)
        {
            CheckBegun();
            if (ReadyItems(_streamedRows) <= _streamedItems) return false;
            (_bandBegin, _bandEnd) = (_streamedItems, _streamedItems + Bands.Items);
            try
            {
                ForwardLayer(0, 1);
            }
            finally
            {
                _bandEnd = 0;
            }
            _streamedItems += Bands.Items;
            return true;
        }
    }

    /// <summary>
    /// Finishes the streamed pass with the whole of <paramref name="image"/> (rows not yet given are packed now):
    /// <paramref name="output"/> receives what Run(image, output) would. Allocates nothing.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public void RunStreamed(ReadOnlySpan<float> image, Span<float> output)
    {
        lock (_turn)
        {
            CheckStreamed(image);
            if (output.Length < OutputLength) throw new ArgumentException($"output has {output.Length} floats; expected {OutputLength}", nameof(output));
            PackRows(image, 0, _streamedRows, Info.Input.H);
            _streamedRows = -1;
            _skipItems = _streamedItems;
            try
            {
                RunLayers(1, output);
            }
            finally
            {
                _skipItems = 0;
            }
        }
    }

    /// <summary>The first layer's items done so far for the streamed image (tests check that bands ran early).</summary>
    internal int StreamedItems => _streamedItems;

    private void CheckBegun()
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (_streamedRows < 0) throw new InvalidOperationException("no streamed input: call BeginStreamedInput first");
    }

    private void CheckStreamed(ReadOnlySpan<float> image)
    {
        CheckBegun();
        if (image.Length != InputLength) throw new ArgumentException($"image has {image.Length} floats; expected {InputLength} ({Info.Input})", nameof(image));
    }

    /// <summary>
    /// The first layer's items whose input rows are all among the first <paramref name="rows"/>: whole bands, in
    /// order. Rows outside the image are the halo's zeros, so with every row in, every band is ready.
    /// </summary>
    private int ReadyItems(int rows)
    {
        var bands = Bands;
        if (bands.Items == 0 || RunsGeneric(0)) return 0;
        return bands.Ready(rows, Info.Input.H, Info.Layers[0].OutShape.H) * bands.Items;
    }

    /// <summary>The first layer's bands with the kernels this network runs: the direct ones when exact.</summary>
    private InputBandsInfo Bands => Exact ? _layout.Bands : _layout.WinogradBands;
}
