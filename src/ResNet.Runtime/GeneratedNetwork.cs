using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using ResNet.Runtime.Weights;

namespace ResNet.Runtime;

/// <summary>
/// What every generated network shares: buffers allocated once at the sizes the generator computed, packed
/// weights, input/output conversion between NCHW and the kernels' blocked layout, and the public API
/// (Run, Classify). A generated subclass supplies the layouts, the weight packing calls and the forward pass.
/// Every method a pass runs is <c>AggressiveOptimization</c>, as are the generated layer methods and kernels: under
/// tiered JIT they were recompiled around a JIT app's passes 30 and 60 on a core the pass needed (30–130 ms of
/// stalls spread over ~10 passes); now they are compiled once, at the first pass (~20 ms more there).
/// </summary>
public abstract unsafe partial class GeneratedNetwork : IDisposable
{
    private readonly IsaLayout _layout;
    private readonly float*[] _buffers;
    private readonly float*[] _weights;
    private readonly float*[] _biases;
    private readonly float* _scratch;
    private readonly List<(IntPtr Address, nuint Bytes)> _allocations = new();
    private readonly TensorLayoutInfo _inputLayout, _outputLayout;
    private readonly WorkerPool? _pool;
    private readonly bool _ownsPool;
    private bool _disposed;

    /// <summary>
    /// Taken by every call that uses the buffers: a network has one set, so calls from several threads take turns
    /// (each gets its own image's logits), and Dispose waits for the run in progress. Networks sharing a pool share
    /// its lock, so they take turns on it too. Uncontended it costs a compare-and-swap per call.
    /// </summary>
    private readonly Lock _turn;

    /// <summary>Allocates activation buffers for <see cref="NetworkOptions.MaxBatch"/> images in the chosen layout.</summary>
    protected GeneratedNetwork(NetworkInfo info, NetworkOptions? options)
    {
        options ??= new NetworkOptions();
        Info = info;
        Isa = options.InstructionSet ?? NetworkOptions.Best;
        if (!NetworkOptions.IsSupported(Isa))
            throw new NotSupportedException($"this process cannot run the {Isa} kernels (best available: {NetworkOptions.Best})");
        if (options.MaxBatch < 1 || options.MaxBatch > 4096)
            throw new ArgumentOutOfRangeException(nameof(options), $"MaxBatch must be between 1 and 4096, not {options.MaxBatch}");
        if (options.Workers == null && (options.Threads < 1 || options.Threads > 1024))
            throw new ArgumentOutOfRangeException(nameof(options), $"Threads must be between 1 and 1024, not {options.Threads}");
        MaxBatch = options.MaxBatch;
        GenericKernels = options.GenericKernels;
        Exact = options.Exact;
        _cacheDirectory = GenericKernels ? null : options.PackedCache;
        _mapCache = options.MapPackedCache;
        _batchedVariants = options.BatchedVariants && !Exact && !GenericKernels;
        _layout = Layout(Isa);
        // Kernels address a batch with int offsets: every buffer of the batch must stay below 2^31 floats.
        long largest = Math.Max(_layout.BufferFloats.Max(), _layout.ScratchFloats);
        if (largest * MaxBatch > int.MaxValue)
            throw new ArgumentOutOfRangeException(nameof(options), $"MaxBatch {MaxBatch} × {largest} floats per image exceeds what one buffer can address; use at most {int.MaxValue / largest}");
        if ((long)_layout.TileFloats * sizeof(float) > TileScratch.Bytes)
            throw new NotSupportedException($"a kernel of this network keeps {_layout.TileFloats} floats of tiles; a thread's tile scratch holds {TileScratch.Bytes / sizeof(float)}");
        _inputLayout = _layout.Tensors[0];
        _outputLayout = _layout.Tensors[info.Layers[^1].Output];
        Threads = options.Workers?.Threads ?? options.Threads;
        // The activations' arena in one zeroed region: a few huge pages rather than thousands of small ones. The
        // scratch has a slot per image, or per thread when each thread keeps its own transformed input
        // (RunWinograd); the generator placed room for two per image in the arena, else it follows the arena.
        long scratchFloats = (long)_layout.ScratchFloats * Math.Max(MaxBatch, Threads <= PrivateTransformThreads ? Threads : 1);
        static long Aligned(long floats) => (floats + 15) & ~15L; // 64 bytes
        long arenaFloats = Aligned((long)_layout.ArenaFloats * MaxBatch);
        bool scratchInArena = _layout.ScratchOffset >= 0 && scratchFloats <= (long)ArenaScratchSlots * _layout.ScratchFloats * MaxBatch;
        long regionFloats = arenaFloats + (scratchInArena ? 0 : Aligned(scratchFloats));
        // What this allocates (native memory, the worker threads) is released at once if a later step fails:
        // a caller that catches the failure and tries a smaller MaxBatch must not wait for the finalizer.
        try
        {
            float* region = Allocate(regionFloats);
            // A one-image run waits for its first inference, which would also wait for the kernel to zero each
            // huge page as a layer first touches it: fault them in now, while (in the CLI) an image decodes on the
            // other core. Measured here: a one-image run's median 19.7 → 18.6 ms with this and the stack mapping
            // below. Only at batch 1: a larger MaxBatch may never be used whole.
            if (MaxBatch == 1) HugePages.Prefault(region, (nuint)(regionFloats * sizeof(float)));
            MapThreadMemory(); // the constructing thread is usually the one that runs the network
            // Offsets are per image and 64-byte aligned; scaled by the batch, buffers that never overlap per image
            // still do not.
            _buffers = new float*[_layout.BufferFloats.Length];
            for (int b = 0; b < _buffers.Length; b++) _buffers[b] = region + (long)_layout.BufferOffsets[b] * MaxBatch;
            (_zeroHaloBefore, _zeroInputHalo, _haloLayouts) = HaloClearings(info, _layout);
            _scratch = scratchInArena ? region + (long)_layout.ScratchOffset * MaxBatch : region + arenaFloats;
            // A slot per layer, and one more per layer for a batched variant's second weight set (BatchedWeights).
            _weights = new float*[2 * info.Layers.Count];
            if (Threads > 1) _pool = options.Workers ?? new WorkerPool(Threads);
            _ownsPool = options.Workers == null;
            _turn = _pool?.Turns ?? new Lock();
            _pool?.MapStacks(UsesTiles);
            _biases = new float*[2 * info.Layers.Count];
            if (GenericKernels) AllocateGeneric();
            // Generic kernels and MaxBatch 1 have no prefix: no frames, so RunsPrefix is false.
            if (MaxBatch >= 2 && options.ImageMajorPrefix && !GenericKernels) AllocatePrefix((int)Aligned(_layout.ArenaFloats), options.MovePrefixBoundary);
        }
        catch
        {
            Free();
            GC.SuppressFinalize(this);
            throw;
        }
    }

    /// <summary>The graph this network computes.</summary>
    public NetworkInfo Info { get; }

    /// <summary>The instruction set the kernels use.</summary>
    public InstructionSet Isa { get; }

    /// <summary>Whether every convolution is direct (no Winograd); see <see cref="NetworkOptions.Exact"/>.</summary>
    public bool Exact { get; }

    /// <summary>Whether the convolutions run the generic kernels; see <see cref="NetworkOptions.GenericKernels"/>.</summary>
    public bool GenericKernels { get; }

    /// <summary>The most floats of transformed tiles a kernel of this network keeps in its thread's <see cref="TileScratch"/>.</summary>
    internal int TileFloats => _layout.TileFloats;

    /// <summary>Threads each layer runs on.</summary>
    public int Threads { get; }

    /// <summary>The largest batch one call may pass.</summary>
    public int MaxBatch { get; }

    /// <summary>Floats per input image (C×H×W, NCHW order).</summary>
    public int InputLength => Info.Input.Elements;

    /// <summary>Floats per output (the logits, for a classifier).</summary>
    public int OutputLength => Info.Output.Elements;

    /// <summary>
    /// Runs a batch: <paramref name="input"/> holds n images in NCHW order (n = length / <see cref="InputLength"/>,
    /// at most <see cref="MaxBatch"/>); <paramref name="output"/> receives n × <see cref="OutputLength"/> values.
    /// Allocates nothing.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public void Run(ReadOnlySpan<float> input, Span<float> output)
    {
        int n = input.Length / InputLength;
        if (n < 1 || n * InputLength != input.Length)
            throw new ArgumentException($"input has {input.Length} floats; expected a multiple of {InputLength} ({Info.Input})", nameof(input));
        if (n > MaxBatch) throw new ArgumentException($"batch of {n} exceeds MaxBatch {MaxBatch}", nameof(input));
        lock (_turn)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            BeginPacking(n, output);
            for (int i = 0; i < n; i++) PackRows(input.Slice(i * InputLength, InputLength), i, 0, Info.Input.H);
            RunLayers(n, output);
        }
    }

    /// <summary>
    /// Runs a batch given as separate images (each <see cref="InputLength"/> floats in NCHW order, at most
    /// <see cref="MaxBatch"/> of them), as <see cref="Run(ReadOnlySpan{float}, Span{float})"/> runs them laid end to
    /// end, without the caller copying them into one array first (the CLI's batches of decoded photos: the copy
    /// wrote 4.2 MB of fresh memory per batch of 7, and on a VM whose page faults trap to the host its ~1,000 faults
    /// took longer than the batch's first layer). Allocates nothing.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public void Run(IReadOnlyList<float[]> images, Span<float> output)
    {
        int n = images.Count;
        if (n < 1 || n > MaxBatch) throw new ArgumentException($"batch of {n} images; expected 1 to MaxBatch {MaxBatch}", nameof(images));
        for (int i = 0; i < n; i++)
            if (images[i]?.Length != InputLength)
                throw new ArgumentException($"image {i} has {images[i]?.Length ?? 0} floats; expected {InputLength} ({Info.Input})", nameof(images));
        lock (_turn)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            BeginPacking(n, output);
            for (int i = 0; i < n; i++) PackRows(images[i], i, 0, Info.Input.H);
            RunLayers(n, output);
        }
    }

    /// <summary>What every Run does before packing its <paramref name="n"/> images: checks the output, maps this thread's stack and tile scratch, clears the input's halo.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private void BeginPacking(int n, Span<float> output)
    {
        if (output.Length < n * OutputLength) throw new ArgumentException($"output has {output.Length} floats; expected {n * OutputLength}", nameof(output));
        MapThreadMemory();
        _streamedRows = -1; // its input is overwritten
        if (_zeroInputHalo) ZeroHalo(_inputLayout.Buffer, n);
    }

    /// <summary>
    /// Maps what this thread's kernels write besides the buffers: its stack and, if they keep Winograd tiles, its
    /// tile scratch (once per thread).
    /// </summary>
    private void MapThreadMemory()
    {
        StackPages.Map();
        if (UsesTiles) TileScratch.Map();
    }

    /// <summary>Whether any kernel keeps tiles in <see cref="TileScratch"/>: the Winograd ones, generated or generic (an exact network has none).</summary>
    private bool UsesTiles => !Exact && _layout.TileFloats > 0;

    /// <summary>Every layer on the packed input of <paramref name="n"/> images, then their outputs.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private void RunLayers(int n, Span<float> output)
    {
        for (int l = RunsPrefix(n) ? RunPrefix(n) : 0; l < Info.Layers.Count; l++)
        {
            RunLayerCore(l, n);
            _skipItems = 0; // what RunStreamed skips is the first layer's
        }
        Unpack(_outputLayout, _buffers[_outputLayout.Buffer], n, Info.Output.C, output);
    }

    /// <summary>Runs a batch and returns the outputs (n × <see cref="OutputLength"/>).</summary>
    public float[] Run(ReadOnlySpan<float> input)
    {
        var output = new float[input.Length / InputLength * OutputLength];
        Run(input, output);
        return output;
    }

    /// <summary>Classifies one image: the top <paramref name="k"/> classes by softmax probability, labelled when the output is ImageNet's 1000 classes.</summary>
    public Prediction[] Classify(ReadOnlySpan<float> input, int k = 5) =>
        Classification.TopK(Run(input), k, OutputLength == ImageNetLabels.All.Count ? ImageNetLabels.All : null);

    /// <summary>
    /// A copy, in NCHW order, of tensor <paramref name="tensor"/> of image <paramref name="image"/> as the last
    /// Run left it. Valid until a later layer writes the tensor's memory (its buffer, or another buffer sharing it
    /// in the arena once the tensor is dead), so the last layer's output stays; meant for tests and debugging. After a
    /// batch whose first layers ran image by image (<see cref="RunsPrefix"/>), only the last of those is kept.
    /// </summary>
    public float[] ReadTensor(int tensor, int image = 0)
    {
        var layout = _layout.Tensors[tensor];
        var all = new float[Info.Tensors[tensor].Elements * (image + 1)];
        lock (_turn)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            Unpack(layout, _buffers[layout.Buffer], image + 1, Info.Tensors[tensor].C, all);
        }
        return all.AsSpan(Info.Tensors[tensor].Elements * image).ToArray();
    }

    /// <summary>The generated layouts of <paramref name="isa"/>.</summary>
    protected abstract IsaLayout Layout(InstructionSet isa);

    /// <summary>Runs layer <paramref name="layer"/> alone on the first <paramref name="n"/> images.</summary>
    protected abstract void ForwardLayer(int layer, int n);

    /// <summary>
    /// Runs one layer on whatever its input buffer holds (after a Run, or garbage-free zeros before one):
    /// for per-layer benchmarks. Allocates nothing.
    /// </summary>
    public void RunLayer(int layer, int batch = 1)
    {
        if ((uint)layer >= (uint)Info.Layers.Count) throw new ArgumentOutOfRangeException(nameof(layer));
        if (batch < 1 || batch > MaxBatch) throw new ArgumentOutOfRangeException(nameof(batch));
        lock (_turn)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            RunLayerCore(layer, batch);
        }
    }

    /// <summary>The buffer with index <paramref name="index"/> (an [image][block][h][w][c] array).</summary>
    protected float* Buffer(int index) => Frame is { } f ? f.Buffers[index] : _buffers[index];

    /// <summary>Per-layer scratch (Winograd's shared transformed input), sized for <see cref="MaxBatch"/> images.</summary>
    protected float* Scratch => Frame is { } f ? f.Scratch : _scratch;

    /// <summary>Packed weights of layer <paramref name="layer"/>.</summary>
    protected float* Weights(int layer) => _weights[layer];

    /// <summary>Folded bias of layer <paramref name="layer"/>, padded to whole blocks.</summary>
    protected float* Bias(int layer) => _biases[layer];

    /// <summary>Weights of layer <paramref name="layer"/>'s batched Winograd variant, when its F(m×m) differs from the batch-1 kernel's.</summary>
    protected float* BatchedWeights(int layer) => _weights[Info.Layers.Count + layer];

    /// <summary>The bias packed beside <see cref="BatchedWeights"/>.</summary>
    protected float* BatchedBias(int layer) => _biases[Info.Layers.Count + layer];

    /// <summary>
    /// Whether to pack the second weight set of a batched variant that runs from <paramref name="from"/> images
    /// on: only if a batch that large may come (it costs memory and loading time), and never for the direct
    /// (exact) or generic kernels.
    /// </summary>
    protected bool PacksBatched(int from) => _batchedVariants && MaxBatch >= from;

    /// <summary>Whether a batch of <paramref name="n"/> runs a batched variant that runs from <paramref name="from"/> images on.</summary>
    protected bool RunsBatched(int n, int from) => _batchedVariants && n >= from;

    private readonly bool _batchedVariants;

    /// <summary>The batch size from which layer <paramref name="layer"/> runs a batched variant; 0 for none.</summary>
    internal int BatchedFrom(int layer) => _layout.BatchedFrom?[layer] ?? 0;

    /// <summary>Runs one kernel over work items [0, count); layers call this in order, so profiling can attribute time.</summary>
    // Not inlined into the ~60 generated layer methods that call it (nor is RunWinograd): under the JIT that made the
    // first pass's compilation ~15–20 ms longer, for one call saved per layer.
    [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
    protected void RunKernel(delegate*<in KernelArgs, int, int, void> kernel, in KernelArgs args, int count, bool endsLayer = true)
    {
        if (_bandEnd > 0)
        {
            kernel(args, _bandBegin, _bandEnd); // a band of the first layer, while its input arrives (StreamInputRows)
            return;
        }
        if (Frame is { Shared: false })
        {
            kernel(args, 0, count); // an image of a batch's prefix, on this thread alone (GeneratedNetwork.Prefix.cs)
            return;
        }
        long t0 = StartTiming();
        Dispatch(kernel, args, count);
        EndTiming(t0, endsLayer);
    }

    /// <summary>
    /// Thread counts up to which a one-image Winograd layer gives every thread its own transformed input: each
    /// thread transforms the whole input (about a tenth of the layer's work) instead of a share of it, and its
    /// GEMMs then read only memory it wrote. Shared, every GEMM read half its input from the other core's
    /// cache; measured here, that cost up to 0.1 ms a layer (layer2's took 0.26 ms instead of 0.15) whenever
    /// the host placed the two vCPUs far apart (a cache-line round trip of ~400 ns instead of ~120). With more
    /// threads the duplicated transform grows while the GEMM share shrinks, so they share it.
    /// </summary>
    private const int PrivateTransformThreads = 2;

    /// <summary>Transformed inputs per image the generator left room for in the arena (its ArenaPlanner.ScratchSlots).</summary>
    private const int ArenaScratchSlots = 2;

    /// <summary>
    /// Runs a Winograd layer whose input transform is a separate pass: <paramref name="input"/> writes the
    /// transform to scratch (its args' output), <paramref name="main"/> reads it (its args' input). With one
    /// image and up to <see cref="PrivateTransformThreads"/> threads, each thread transforms into its own scratch
    /// slot and goes straight on to GEMM items; otherwise the transform is split across the threads and joined.
    /// </summary>
    [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
    protected void RunWinograd(delegate*<in KernelArgs, int, int, void> input, in KernelArgs inputArgs, int inputItems,
        delegate*<in KernelArgs, int, int, void> main, in KernelArgs mainArgs, int mainItems, int n)
    {
        if (Frame is { Shared: false })
        {
            input(inputArgs, 0, inputItems);
            main(mainArgs, 0, mainItems);
            return;
        }
        if (_pool == null || n != 1 || Threads > PrivateTransformThreads)
        {
            RunKernel(input, inputArgs, inputItems, endsLayer: false);
            RunKernel(main, mainArgs, mainItems);
            return;
        }
        long t0 = StartTiming();
        _pool.Run(input, inputArgs, inputItems, main, mainArgs, mainItems, _layout.ScratchFloats);
        EndTiming(t0, endsLayer: true);
    }

    private long StartTiming() => _layerTimes == null && LayerObserver == null ? 0 : System.Diagnostics.Stopwatch.GetTimestamp();

    private void EndTiming(long t0, bool endsLayer)
    {
        if (_layerTimes == null && LayerObserver == null) return;
        int layer = _layerCursor % Info.Layers.Count;
        if (_layerTimes != null) _layerTimes[layer] += System.Diagnostics.Stopwatch.GetElapsedTime(t0).TotalMilliseconds;
        if (!endsLayer) return;
        _layerCursor++;
        LayerObserver?.Invoke(layer);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private void Dispatch(delegate*<in KernelArgs, int, int, void> kernel, in KernelArgs args, int count)
    {
        if (_pool != null) _pool.Run(kernel, args, _skipItems, count);
        else kernel(args, _skipItems, count);
    }

    /// <summary>Called after each layer with its index (tests read tensors there, before buffers are reused).</summary>
    internal Action<int>? LayerObserver { get; set; }

    private double[]? _layerTimes;
    private int _layerCursor;

    /// <summary>
    /// Starts (or, with false, stops) accumulating per-layer wall time over later runs, indexed like
    /// <see cref="NetworkInfo.Layers"/>; returns the accumulator.
    /// </summary>
    public double[]? ProfileLayers(bool enable)
    {
        lock (_turn)
        {
            _layerTimes = enable ? new double[Info.Layers.Count] : null;
            _layerCursor = 0;
            return _layerTimes;
        }
    }

    /// <summary>Refuses a state_dict with a missing, unexpected, wrongly typed or wrongly shaped entry, naming the key.</summary>
    protected void CheckWeights(StateDict weights) => weights.CheckAgainst(Info.Parameters);

    /// <summary>Folds layer <paramref name="layer"/>'s BatchNorm into its convolution and packs both for the kernels.</summary>
    protected void PackConv(int layer, StateDict? weights, int inBlock, int outBlock, int ocTile)
    {
        var c = Info.Layers[layer].Conv!;
        ocTile = GenericPacking(layer, ocTile, winogradM: 0);
        QueueFolded(layer, weights, Packing.ConvLength(c, inBlock, outBlock), outBlock, (w, dst) => Packing.Conv(w, c, inBlock, outBlock, ocTile, dst));
    }

    /// <summary>
    /// Folds layer <paramref name="layer"/>'s BatchNorm and transforms the 3×3 weights for Winograd F(m×m,3×3);
    /// <paramref name="batched"/>: into the batched variant's slot (<see cref="BatchedWeights"/>).
    /// </summary>
    protected void PackWinograd(int layer, StateDict? weights, int m, int block, int ocTile, bool batched = false)
    {
        var c = Info.Layers[layer].Conv!;
        if (!batched) ocTile = GenericPacking(layer, ocTile, winogradM: m);
        QueueFolded(layer, weights, Packing.WinogradLength(c, m, block), block, (w, dst) => Packing.Winograd(w, c, m, block, ocTile, dst),
            slot: batched ? Info.Layers.Count + layer : layer);
    }

    /// <summary>
    /// Folds layer <paramref name="layer"/>'s BatchNorm and transforms its kernel rows for the row-Winograd kernel,
    /// F(<paramref name="m"/>, r) over the stride's row phases.
    /// </summary>
    protected void PackRowWinograd(int layer, StateDict? weights, int m, int block, int ocTile)
    {
        var c = Info.Layers[layer].Conv!;
        ocTile = GenericPacking(layer, ocTile, winogradM: 0, rowWinogradM: m);
        QueueFolded(layer, weights, Packing.RowWinogradLength(c, m, block), block, (w, dst) => Packing.RowWinograd(w, c, m, block, ocTile, dst));
    }

    /// <summary>
    /// Folds layer <paramref name="layer"/>'s BatchNorm and packs a 3×3 stride-2 convolution for the phase-split
    /// row-Winograd kernel: kernel rows 0 and 2 transformed by F(<paramref name="m"/>, 2), row 1 as it is.
    /// </summary>
    protected void PackRowWinogradSplit(int layer, StateDict? weights, int m, int block, int ocTile)
    {
        var c = Info.Layers[layer].Conv!;
        ocTile = GenericPacking(layer, ocTile, winogradM: 0, rowWinogradM: m);
        QueueFolded(layer, weights, Packing.RowWinogradSplitLength(c, m, block), block, (w, dst) => Packing.RowWinogradSplit(w, c, m, block, ocTile, dst));
    }

    private void QueueFolded(int layer, StateDict? weights, int weightFloats, int block, Action<ReadOnlySpan<float>, Span<float>> pack, int slot = -1)
    {
        var l = Info.Layers[layer];
        var c = l.Conv!;
        int folded = checked(c.OutChannels * (c.InChannels / c.Groups) * c.KernelH * c.KernelW);
        Queue(slot >= 0 ? slot : layer, weightFloats, Packing.BiasLength(c.OutChannels, block), (dst, bias, scratch) =>
        {
            var w = scratch[..folded];
            var b = new float[c.OutChannels];
            Folding.FoldConv(weights!, l, w, b);
            pack(w, dst);
            Packing.Bias(b, bias);
        }, folded);
    }

    /// <summary>Packs a Linear layer's weights in the order its blocked input is read.</summary>
    protected void PackLinear(int layer, StateDict? weights, TensorLayoutInfo input, int outBlock, int outTile)
    {
        var l = Info.Layers[layer];
        var p = l.Linear!;
        Queue(layer, Packing.LinearLength(p, l.InShape, input, outBlock), Packing.BiasLength(p.OutFeatures, outBlock), (dst, bias, _) =>
        {
            var w = weights!.Values(l.Name + ".weight");
            var b = p.Bias ? weights.Values(l.Name + ".bias") : new float[p.OutFeatures];
            Packing.Linear(w, p, l.InShape, input, outBlock, outTile, dst);
            Packing.Bias(b, bias);
        });
    }

    /// <summary>
    /// Runs the folding and packing the Pack calls queued, layers in parallel (it is most of load time), each
    /// straight into its native buffers, folding into a scratch buffer per thread (huge pages, reused from layer
    /// to layer) rather than into fresh arrays: ResNet-18's 47 MB of folded copies were ~11,000 page faults.
    /// </summary>
    protected void CompletePacking()
    {
        // Largest first, one at a time from a shared counter: a helper thread that starts late still finds large
        // layers left, and the last ones to finish are small.
        var jobs = TakeJobs().OrderByDescending(j => j.WeightFloats).ToArray();
        nuint scratchBytes = (nuint)(jobs.Select(j => (long)j.ScratchFloats).DefaultIfEmpty(0).Max() * sizeof(float));
        int next = -1;
        Parallel.For(0, Math.Max(1, Math.Min(Threads, jobs.Length)), new ParallelOptions { MaxDegreeOfParallelism = Math.Max(1, Threads) }, _ =>
        {
            void* scratch = scratchBytes == 0 ? null : HugePages.Allocate(scratchBytes);
            try
            {
                for (int i; (i = Interlocked.Increment(ref next)) < jobs.Length;)
                {
                    var job = jobs[i];
                    job.Pack(new Span<float>(_weights[job.Slot], job.WeightFloats), new Span<float>(_biases[job.Slot], job.BiasFloats),
                        new Span<float>(scratch, job.ScratchFloats));
                }
            }
            finally
            {
                if (scratch != null) HugePages.Free(scratch, scratchBytes);
            }
        });
    }

    /// <summary>
    /// Weights from <paramref name="path"/> (a torch.save state_dict), through the packed-weights cache when
    /// <see cref="NetworkOptions.PackedCache"/> names one: a hit reads the packed layers straight into place, a
    /// miss loads, folds and packs, then stores them for next time. <paramref name="prepare"/> queues every
    /// layer's packing (with a null state_dict it only states the sizes, which a cache file must match).
    /// </summary>
    protected void LoadWeights(string path, Action<StateDict?> prepare) => LoadWeights(path, () => StateDict.LoadForPacking(path), prepare);

    /// <summary>
    /// Weights from a torch.save state_dict in <paramref name="stream"/>, through the packed-weights cache only when
    /// <paramref name="identifiedBy"/> names a file whose path, size and modification time stand for the stream's
    /// contents (the binary a resource is embedded in): nothing else names them.
    /// </summary>
    protected void LoadWeights(Stream stream, string name, string? identifiedBy, Action<StateDict?> prepare)
    {
        if (identifiedBy != null && File.Exists(identifiedBy)) LoadWeights(identifiedBy, () => StateDict.LoadForPacking(stream, name), prepare);
        else Pack(StateDict.LoadForPacking(stream, name), prepare);
    }

    /// <summary>The cache's lookup and store around <paramref name="read"/>, keyed by the file <paramref name="key"/>.</summary>
    private void LoadWeights(string key, Func<StateDict> read, Action<StateDict?> prepare)
    {
        string? cacheFile = null;
        if (_cacheDirectory != null)
        {
            prepare(null); // the sizes, which name the mode (CacheMode)
            cacheFile = PackedCache.FileFor(_cacheDirectory, key, Info.Name, Isa, CacheMode, _layout.Signature);
            if (cacheFile != null && TryMapCache(cacheFile)) return;
            var jobs = TakeJobs();
            if (cacheFile != null && PackedCache.TryRead(cacheFile, Ranges(jobs))) return;
        }
        var packed = Pack(read(), prepare);
        if (cacheFile != null)
            PackedCache.TryWrite(cacheFile, Ranges(packed));
    }

    /// <summary>Checks, folds and packs a state_dict read only for this, then frees it; returns the jobs packed.</summary>
    private PackJob[] Pack(StateDict weights, Action<StateDict?> prepare)
    {
        try
        {
            CheckWeights(weights);
            prepare(weights);
            var packed = _jobs.ToArray();
            CompletePacking();
            return packed;
        }
        finally
        {
            weights.Release();
        }
    }

    /// <summary>What the packed copy holds besides the instruction set: the direct kernels' weights, Winograd's, or Winograd's with the batched variants' second sets.</summary>
    private string CacheMode => Exact ? "exact" : _jobs.Any(j => j.Slot >= Info.Layers.Count) ? "batched" : "winograd";

    /// <summary>Points every queued layer's weights and bias into a mapping of <paramref name="cacheFile"/> (first load only).</summary>
    private bool TryMapCache(string cacheFile)
    {
        if (!_mapCache || _mapping != null || _jobs.Any(j => _weights[j.Slot] != null)) return false;
        var mapping = PackedCache.TryMap(cacheFile, _jobs.Select(j => ((long)j.WeightFloats, (long)j.BiasFloats)).ToArray());
        if (mapping == null) return false;
        for (int i = 0; i < _jobs.Count; i++)
        {
            _weights[_jobs[i].Slot] = mapping.Weights(i);
            _biases[_jobs[i].Slot] = mapping.Bias(i);
        }
        _jobs.Clear();
        _mapping = mapping;
        return true;
    }

    private PackedCache.Mapping? _mapping;
    private readonly bool _mapCache;

    /// <summary>Whether the weights are a mapping of a packed-cache file (rather than memory this network packed or read into).</summary>
    internal bool WeightsMapped => _mapping != null;

    private (IntPtr, long, IntPtr, long)[] Ranges(PackJob[] jobs) =>
        jobs.Select(j => ((IntPtr)_weights[j.Slot], (long)j.WeightFloats, (IntPtr)_biases[j.Slot], (long)j.BiasFloats)).ToArray();

    private void Queue(int slot, int weightFloats, int biasFloats, PackAction pack, int scratchFloats = 0) =>
        _jobs.Add(new PackJob(slot, weightFloats, biasFloats, pack, scratchFloats));

    /// <summary>
    /// The queued jobs, their destination buffers allocated (reused when the same layer was queued before): all in
    /// one allocation, cache-line aligned each, so that the small layers' weights fault in with the large ones'
    /// huge pages rather than page by page from the C heap.
    /// </summary>
    private PackJob[] TakeJobs()
    {
        var jobs = _jobs.ToArray();
        _jobs.Clear();
        static long Lines(int floats) => (floats + 15L) & ~15L;
        long total = jobs.Sum(j => (_weights[j.Slot] == null ? Lines(j.WeightFloats) : 0) + (_biases[j.Slot] == null ? Lines(j.BiasFloats) : 0));
        if (total == 0) return jobs;
        float* next = Allocate(total);
        foreach (var j in jobs)
        {
            if (_weights[j.Slot] == null) { _weights[j.Slot] = next; next += Lines(j.WeightFloats); }
            if (_biases[j.Slot] == null) { _biases[j.Slot] = next; next += Lines(j.BiasFloats); }
        }
        return jobs;
    }

    private readonly List<PackJob> _jobs = new();
    private readonly string? _cacheDirectory;

    /// <summary>Packs one layer into <paramref name="weights"/> and <paramref name="bias"/>, with <paramref name="scratch"/> (its job's ScratchFloats) to fold into.</summary>
    private delegate void PackAction(Span<float> weights, Span<float> bias, Span<float> scratch);

    /// <summary>A layer's packing into weight slot <paramref name="Slot"/> (the layer's index, or past the layers for a batched variant's set).</summary>
    private readonly record struct PackJob(int Slot, int WeightFloats, int BiasFloats, PackAction Pack, int ScratchFloats);

    /// <summary>Rows [<paramref name="from"/>, <paramref name="to"/>) of every channel of one image into image slot <paramref name="i"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private void PackRows(ReadOnlySpan<float> image, int i, int from, int to)
    {
        var l = _inputLayout;
        float* dst = _buffers[l.Buffer];
        var s = Info.Input;
        for (int c = 0; c < s.C; c++)
        for (int h = from; h < to; h++)
        {
            var row = image.Slice((c * s.H + h) * s.W, s.W);
            float* d = dst + (long)i * l.ImageFloats + l.Offset(c, h, 0);
            if (l.Block == 1) row.CopyTo(new Span<float>(d, s.W)); // planar: a row is contiguous (a vectorized copy)
            else for (int w = 0; w < s.W; w++) d[w * l.Block] = row[w];
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Unpack(TensorLayoutInfo l, float* src, int n, int channels, Span<float> output)
    {
        for (int i = 0; i < n; i++)
        for (int c = 0; c < channels; c++)
        for (int h = 0; h < l.H; h++)
        {
            float* s = src + (long)i * l.ImageFloats + l.Offset(c, h, 0);
            var row = output.Slice(((i * channels + c) * l.H + h) * l.W, l.W);
            for (int w = 0; w < l.W; w++) row[w] = s[w * l.Block];
        }
    }

    /// <summary>Zeroed native memory, freed with the network (halos must start zero; weights are overwritten).</summary>
    private float* Allocate(long floats)
    {
        nuint bytes = (nuint)(Math.Max(1, floats) * sizeof(float));
        void* p = HugePages.Allocate(bytes);
        lock (_allocations) _allocations.Add(((IntPtr)p, bytes));
        return (float*)p;
    }


    /// <summary>Frees the native buffers and weights, once a run in progress on another thread has returned.</summary>
    public void Dispose()
    {
        lock (_turn) Free();
        GC.SuppressFinalize(this);
    }

    /// <summary>
    /// Dispose for a process about to exit: the network can no longer run, but its buffers and the packed weights'
    /// mapping are left to the exit, which releases a process's memory at once, where unmapping them one by one took
    /// 0.5–1.3 ms on a VM whose page-table changes trap to the host (the CLI's one-image run: 23.76 → 22.81 ms). Its
    /// worker threads, if it started its own, are left to the exit too.
    /// What the exit would not do is still done: when the packed file's pieces were found in small page-cache folios
    /// and are due to be dropped (<see cref="PackedCache.Mapping"/>), which needs the mapping gone, this disposes.
    /// </summary>
    public void DisposeForExit()
    {
        if (_mapping != null && _mapping.RepairDue(DateTime.UtcNow))
        {
            Dispose();
            return;
        }
        lock (_turn) _disposed = true;
        GC.SuppressFinalize(this);
    }

    /// <summary>Frees native memory if Dispose was not called.</summary>
    ~GeneratedNetwork() => Free();

    private void Free()
    {
        if (_disposed) return;
        _disposed = true;
        if (_ownsPool) _pool?.Dispose();
        FreePrefix();
        foreach (var (p, bytes) in _allocations) HugePages.Free((void*)p, bytes);
        _allocations.Clear();
        _mapping?.Dispose();
    }
}
