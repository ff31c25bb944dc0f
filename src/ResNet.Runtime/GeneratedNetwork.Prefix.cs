using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace ResNet.Runtime;

/// <summary>
/// A batch's first layers image by image. At batch 8 and one thread, conv1 to layer2 took 41.6 ms against
/// 8 × 4.5 for one image at a time: a batch's activations leave the core's L2 (layer1's are 0.8 MB an image), while
/// these layers' weights are small enough to stay in cache whichever way they run. So the layers up to a boundary
/// (<see cref="PrefixEnd"/>) run per image, each thread taking whole images through them in a private one-image
/// arena (a <see cref="PrefixFrame"/>) with no join between layers, and only the rest runs on the whole batch.
/// The kernels are the batch-1 ones, so every image's values are those it gets alone.
/// </summary>
public abstract unsafe partial class GeneratedNetwork
{
    /// <summary>
    /// A layer belongs to the prefix only if its direct-convolution weights are at most this size: two threads each
    /// streaming layer3's (2.4 MB direct, 9.4 MB as Winograd) ran it up to a third slower than one (two one-thread
    /// processes at once), while conv1 to layer2 (up to 0.6 MB) ran as fast as alone.
    /// </summary>
    private const long PrefixWeightBytes = 1 << 20;

    /// <summary>Layers [0, _prefixEnd) run image by image in batches (<see cref="RunsPrefix"/>); 0: never.</summary>
    private int _prefixEnd;

    /// <summary>How many layers a batch runs image by image (0 with MaxBatch 1: none).</summary>
    internal int PrefixLayers => _prefixEnd;

    /// <summary>The one buffer alive across the prefix's boundary (its last layer's output).</summary>
    private int _prefixOutputBuffer;

    /// <summary>
    /// Buffers whose halo a batch clears after its prefix: first written inside the prefix, where the clearing before
    /// that write (<see cref="_zeroHaloBefore"/>) cleared the thread's frame, and written again after it in the batch's
    /// own arena, whose halos then held whatever the memory's other tenants last left there.
    /// </summary>
    private int[] _zeroHaloAfterPrefix = [];

    /// <summary>How many buffers a batch clears the halo of after its prefix (tests check a network has some).</summary>
    internal int HalosClearedAfterPrefix => _zeroHaloAfterPrefix.Length;

    private PrefixFrame[]? _frames;
    private int[]? _frameBusy;
    private GCHandle _self;

    /// <summary>The frame this thread is running a prefix in, if any (<see cref="Buffer"/>, <see cref="Scratch"/>, <see cref="RunKernel"/> follow it).</summary>
    [ThreadStatic] private static PrefixFrame? t_frame;

    /// <summary>
    /// One thread's one-image arena: its own buffers, except the input and the boundary's, which are the image's slices
    /// of the batch's. <see cref="Shared"/>: the image is one left over after an even share, and its layers are split
    /// across the threads as usual (the arena's scratch has a slot per thread for that, as the batch-1 layout has).
    /// </summary>
    private sealed class PrefixFrame(GeneratedNetwork owner, float*[] buffers, float* scratch)
    {
        public readonly GeneratedNetwork Owner = owner;
        public readonly float*[] Buffers = buffers;
        public readonly float* Scratch = scratch;
        public bool Shared;
    }

    /// <summary>
    /// The longest prefix whose layers are convolutions with small weights (or weightless) without a batched variant
    /// (<paramref name="batchedFrom"/>: a batch runs those better whole) and after which one tensor alone is still
    /// needed: the last prefix layer's output, which the rest of the network then reads for the whole batch. 0 when
    /// there is none.
    /// </summary>
    internal static int PrefixEnd(NetworkInfo info, int[]? batchedFrom)
    {
        var producer = new int[info.Tensors.Count];
        Array.Fill(producer, -1);
        for (int j = 0; j < info.Layers.Count; j++) producer[info.Layers[j].Output] = j;
        int best = 0;
        for (int end = 1; end < info.Layers.Count; end++)
        {
            var last = info.Layers[end - 1];
            if (last.Kind == LayerKind.Linear || batchedFrom?[end - 1] > 0) break;
            if (last.Conv is { } c && 4L * c.InChannels / c.Groups * c.OutChannels * c.KernelH * c.KernelW > PrefixWeightBytes) break;
            bool alone = true;
            for (int j = end; j < info.Layers.Count && alone; j++)
            {
                var l = info.Layers[j];
                alone = (l.Input == last.Output || producer[l.Input] >= end) && (l.Residual < 0 || l.Residual == last.Output || producer[l.Residual] >= end);
            }
            if (alone) best = end;
        }
        return best;
    }

    /// <summary>
    /// Sets up the prefix for batches (<see cref="NetworkOptions.MaxBatch"/> ≥ 2): a one-image arena per thread, and
    /// the boundary's buffer moved out of the arena if it shares memory with the input's there (one thread's image
    /// would write where another's input still waits).
    /// </summary>
    private void AllocatePrefix(int arenaFloatsPerImage, bool moveBoundary)
    {
        _prefixEnd = PrefixEnd(Info, _layout.BatchedFrom);
        if (_prefixEnd == 0) return;
        _prefixOutputBuffer = _layout.Tensors[Info.Layers[_prefixEnd - 1].Output].Buffer;
        int Writer(int buffer, int from) => Enumerable.Range(from, Info.Layers.Count - from).FirstOrDefault(l => _layout.Tensors[Info.Layers[l].Output].Buffer == buffer, -1);
        _zeroHaloAfterPrefix = _layout.HaloZeroed.Where(b => b != _inputLayout.Buffer && Writer(b, 0) is >= 0 and var f && f < _prefixEnd && Writer(b, _prefixEnd) >= 0).ToArray();
        int input = _inputLayout.Buffer, boundary = _prefixOutputBuffer;
        if (moveBoundary || boundary != input && Overlap(_layout.BufferOffsets[input], _layout.BufferFloats[input], _layout.BufferOffsets[boundary], _layout.BufferFloats[boundary]))
            _buffers[boundary] = Allocate((long)_layout.BufferFloats[boundary] * MaxBatch);
        // No more images run at once than there are threads, or images in a batch.
        _frames = new PrefixFrame[Math.Min(Threads, MaxBatch)];
        _frameBusy = new int[_frames.Length];
        bool scratchInArena = _layout.ScratchOffset >= 0;
        for (int t = 0; t < _frames.Length; t++)
        {
            float* arena = Allocate(arenaFloatsPerImage + (scratchInArena ? 0 : _layout.ScratchFloats));
            var buffers = new float*[_buffers.Length];
            for (int b = 0; b < buffers.Length; b++) buffers[b] = arena + _layout.BufferOffsets[b];
            _frames[t] = new PrefixFrame(this, buffers, scratchInArena ? arena + _layout.ScratchOffset : arena + arenaFloatsPerImage);
        }
        _self = GCHandle.Alloc(this, GCHandleType.Weak);
    }

    private static bool Overlap(long aOffset, long aFloats, long bOffset, long bFloats) => aOffset < bOffset + bFloats && bOffset < aOffset + aFloats;

    /// <summary>Whether a batch of <paramref name="n"/> runs its first layers image by image.</summary>
    internal bool RunsPrefix(int n) => _frames != null && n >= 2 && _layerTimes == null && LayerObserver == null;

    /// <summary>
    /// Runs the prefix for each of the <paramref name="n"/> images, an image per work item across the threads as far
    /// as they share them evenly, then each image left over on all threads (3 images on 2 threads: 2 + 1 instead of
    /// one thread taking two); returns the first layer left.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private int RunPrefix(int n)
    {
        int apart = _pool == null ? n : n - n % Threads;
        var args = new KernelArgs(null, null, null, null, null, (void*)GCHandle.ToIntPtr(_self));
        if (_pool != null) _pool.Run(&PrefixImages, args, 0, apart); // apart 0 (fewer images than threads): an empty range
        else PrefixImages(args, 0, apart);
        if (apart < n) RunPrefixImages(apart, n, shared: true);
        foreach (int b in _zeroHaloAfterPrefix) ZeroHalo(b, n);
        return _prefixEnd;
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void PrefixImages(in KernelArgs args, int begin, int end) =>
        ((GeneratedNetwork)GCHandle.FromIntPtr((IntPtr)args.Shape).Target!).RunPrefixImages(begin, end, shared: false);

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private void RunPrefixImages(int begin, int end, bool shared)
    {
        int slot = 0;
        while (Interlocked.CompareExchange(ref _frameBusy![slot], 1, 0) != 0) slot = (slot + 1) % _frameBusy.Length;
        var frame = _frames![slot];
        frame.Shared = shared;
        t_frame = frame;
        try
        {
            for (int i = begin; i < end; i++)
            {
                frame.Buffers[_inputLayout.Buffer] = _buffers[_inputLayout.Buffer] + (long)i * _inputLayout.ImageFloats;
                frame.Buffers[_prefixOutputBuffer] = _buffers[_prefixOutputBuffer] + (long)i * _haloLayouts[_prefixOutputBuffer].ImageFloats;
                for (int l = 0; l < _prefixEnd; l++) RunLayerCore(l, 1);
            }
        }
        finally
        {
            t_frame = null;
            Volatile.Write(ref _frameBusy[slot], 0);
        }
    }

    /// <summary>The prefix frame this thread is running for this network, or null (without frames, no thread-static read).</summary>
    private PrefixFrame? Frame => _frames != null && t_frame is { } f && f.Owner == this ? f : null;

    private void FreePrefix()
    {
        if (_self.IsAllocated) _self.Free();
    }
}
