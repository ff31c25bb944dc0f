using System.Runtime.CompilerServices;

namespace ResNet.Runtime;

/// <summary>
/// A persistent set of worker threads that run one kernel at a time over a range of work items, with the
/// calling thread taking part. A layer is handed over as a function pointer and a <see cref="KernelArgs"/>
/// struct, each thread works through its own contiguous share of the items and then helps with the others'
/// unfinished shares, and the caller spins until the last item is done: nothing is allocated per layer.
/// Between layers a worker spins briefly before blocking, because the next layer is usually microseconds away
/// and waking a blocked thread costs tens of them — unless the pool has more threads than processors.
/// What runs per layer is <c>AggressiveOptimization</c>, for the reason <see cref="GeneratedNetwork"/> gives.
/// </summary>
public sealed unsafe class WorkerPool : IDisposable
{
    /// <summary>About a millisecond of polling (each spin is a short pause loop) before a worker blocks.</summary>
    private const int SpinsBeforeSleep = 4000;

    /// <summary>
    /// Polls before a worker blocks: none when the pool has more threads than the process has processors, where a
    /// polling worker takes the core a thread still holding items needs (16 threads on 2 cores ran a pass ~120× slower).
    /// </summary>
    private readonly int _spinsBeforeSleep;

    private readonly Worker[] _workers;
    private delegate*<in KernelArgs, int, int, void> _kernel;
    private KernelArgs _args;
    /// <summary>Per thread: next unclaimed item and end of its share, one cache line each so claims never contend unless a thread is helping.</summary>
    private readonly Share[] _shares;
    private int _pending;
    private volatile int _generation;
    private volatile bool _stopping;

    /// <summary>Starts <paramref name="threads"/> − 1 workers (the caller is the last thread).</summary>
    public WorkerPool(int threads)
    {
        if (threads < 1 || threads > 1024) throw new ArgumentOutOfRangeException(nameof(threads), $"threads must be between 1 and 1024, not {threads}");
        Threads = threads;
        _spinsBeforeSleep = threads > Environment.ProcessorCount ? 0 : SpinsBeforeSleep;
        _shares = new Share[threads];
        _workers = new Worker[threads - 1];
        for (int i = 0; i < _workers.Length; i++)
        {
            _workers[i] = new Worker(this, i);
            _workers[i].Thread.Start();
        }
    }

    /// <summary>Threads taking part in each kernel, the caller included.</summary>
    public int Threads { get; }

    /// <summary>What the networks running on this pool take turns with (a network's calls hold it): one pass at a time.</summary>
    internal Lock Turns { get; } = new();

    /// <summary>Whether idle workers poll for the next layer before blocking (not when the pool oversubscribes the processors).</summary>
    internal bool Polls => _spinsBeforeSleep > 0;

    /// <summary>Runs <paramref name="kernel"/> over work items [0, count) on all threads and returns when every item is done.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public void Run(delegate*<in KernelArgs, int, int, void> kernel, in KernelArgs args, int count) => Run(kernel, args, 0, count);

    /// <summary>Runs <paramref name="kernel"/> over work items [begin, end) on all threads and returns when every item is done.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public void Run(delegate*<in KernelArgs, int, int, void> kernel, in KernelArgs args, int begin, int end)
    {
        if (_workers.Length == 0 || end - begin < 2)
        {
            kernel(args, begin, end);
            return;
        }
        Enter();
        try { RunCore(kernel, args, begin, end); }
        finally { Volatile.Write(ref _running, 0); }
    }

    /// <summary>One run at a time (networks on the pool take turns through <see cref="Turns"/>; this catches other callers).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private void Enter()
    {
        ObjectDisposedException.ThrowIf(_stopping, this);
        if (Interlocked.Exchange(ref _running, 1) != 0)
            throw new InvalidOperationException("this WorkerPool is already running a layer: its Run calls must not overlap (networks sharing it take turns)");
    }

    private int _running;

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private void RunCore(delegate*<in KernelArgs, int, int, void> kernel, in KernelArgs args, int begin, int end)
    {
        _kernel = kernel;
        _args = args;
        long count = end - begin;
        for (int t = 0; t < Threads; t++)
        {
            _shares[t].Next = begin + (int)(count * t / Threads);
            _shares[t].End = begin + (int)(count * (t + 1) / Threads);
        }
        _pending = _workers.Length;
        _generation++; // publishes the fields above (volatile write)
        foreach (var w in _workers) w.Wake();
        RunShare(0);
        var spin = new SpinWait();
        while (Volatile.Read(ref _pending) != 0) spin.SpinOnce(sleep1Threshold: -1);
    }

    /// <summary>
    /// Runs <paramref name="prologue"/> over all of [0, prologueCount) on every thread, each writing to its own
    /// slot (its args' output advanced by thread index × <paramref name="slotFloats"/>), then
    /// <paramref name="kernel"/> over [0, count) as the three-argument Run does, each thread reading its own
    /// slot (its args' input advanced likewise). No join between the two: a thread needs only what it wrote itself.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public void Run(delegate*<in KernelArgs, int, int, void> prologue, in KernelArgs prologueArgs, int prologueCount,
        delegate*<in KernelArgs, int, int, void> kernel, in KernelArgs args, int count, long slotFloats)
    {
        if (_workers.Length == 0 || count < 2)
        {
            // What the three-argument Run would do alone: this thread, slot 0.
            prologue(prologueArgs, 0, prologueCount);
            kernel(args, 0, count);
            return;
        }
        Enter();
        try
        {
            _prologue = prologue;
            _prologueArgs = prologueArgs;
            _prologueCount = prologueCount;
            _slotFloats = slotFloats;
            RunCore(kernel, args, 0, count);
        }
        finally
        {
            _prologue = null;
            Volatile.Write(ref _running, 0);
        }
    }

    private delegate*<in KernelArgs, int, int, void> _prologue;
    private KernelArgs _prologueArgs;
    private int _prologueCount;
    private long _slotFloats;

    /// <summary>
    /// Thread <paramref name="index"/>'s share is the same contiguous range every layer, so the rows (or
    /// channels) a thread wrote are mostly the ones it reads next, from its own cache. (Claiming chunks from one
    /// shared counter moved activations between cores at every layer: 2 threads ran layer1 slower than 1.)
    /// Items are claimed one at a time, so a thread that finishes early (its core was busier) takes the
    /// rest of another's share instead of spinning at the join.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private void RunShare(int index)
    {
        var args = _args;
        if (_prologue != null)
        {
            long slot = index * _slotFloats;
            var p = _prologueArgs;
            _prologue(new KernelArgs(p.Input, p.Weights, p.Bias, p.Output + slot, p.Residual), 0, _prologueCount);
            args = new KernelArgs(args.Input + slot, args.Weights, args.Bias, args.Output, args.Residual);
        }
        for (int k = 0; k < Threads; k++)
        {
            ref var share = ref _shares[(index + k) % Threads];
            int item;
            while ((item = Interlocked.Increment(ref share.Next) - 1) < share.End) _kernel(args, item, item + 1);
        }
    }

    [System.Runtime.InteropServices.StructLayout(System.Runtime.InteropServices.LayoutKind.Explicit, Size = 128)]
    private struct Share
    {
        [System.Runtime.InteropServices.FieldOffset(64)] public int Next;
        [System.Runtime.InteropServices.FieldOffset(68)] public int End;
    }

    /// <summary>
    /// Asks the workers to map the stack the kernels use (<see cref="StackPages"/>) and, with
    /// <paramref name="tiles"/>, their tile scratch (<see cref="TileScratch"/>) now, while the caller still has
    /// other work (loading weights), rather than during the first layer. Returns at once.
    /// </summary>
    internal void MapStacks(bool tiles)
    {
        if (_stopping) return; // the workers are gone, or going: nothing would free what they were given
        // Each worker's tile scratch is faulted in here, by the caller: in the CLI the worker is decoding the image
        // meanwhile, and a huge page it faulted in itself afterwards (0.1 ms, or a few when the host has taken the
        // memory back) would delay the first layer.
        if (tiles)
            lock (_workers)
                foreach (var w in _workers)
                    if (w.Tiles == null) w.Tiles = TileScratch.Allocate();
        _mapStacks = true;
        foreach (var w in _workers) w.Wake();
    }

    private volatile bool _mapStacks;

    /// <summary>
    /// Runs <paramref name="work"/> on a worker thread while the caller goes on, for work that must overlap the
    /// caller's before the first layer (the CLI decodes its image there while this thread loads the weights). The
    /// worker is running already, so nothing waits for a thread to start: on this 2-vCPU VM, starting one while
    /// another thread of the process sleeps kept the starting thread off a core for ~2 ms (a pool's first use
    /// does the same). With no workers, it runs on the thread pool. One at a time (another posted before the first
    /// started throws InvalidOperationException); a layer run meanwhile waits for it.
    /// </summary>
    public Task<T> RunOnWorker<T>(Func<T> work)
    {
        ObjectDisposedException.ThrowIf(_stopping, this);
        if (_workers.Length == 0) return Task.Run(work);
        // Continuations run on the worker as it completes the task (the default): queued to the thread pool instead,
        // they would start the pool this avoids.
        var done = new TaskCompletionSource<T>();
        _workers[0].Post(() =>
        {
            try
            {
                done.SetResult(work());
            }
            catch (Exception e)
            {
                done.SetException(e);
            }
        });
        return done.Task;
    }

    /// <summary>Stops the workers.</summary>
    public void Dispose()
    {
        _stopping = true;
        _generation++;
        foreach (var w in _workers)
        {
            w.Wake();
            w.Thread.Join();
            if (w.Tiles != null) TileScratch.Free(w.Tiles);
            w.Tiles = null;
        }
    }

    private sealed class Worker
    {
        private readonly WorkerPool _pool;
        private readonly int _index;
        private readonly SemaphoreSlim _wake = new(0);
        private int _sleeping;
        /// <summary>The generation when this worker was created: read on the creating thread, so a Run that starts before the thread does is not missed.</summary>
        private readonly int _startGeneration;

        public Worker(WorkerPool pool, int index)
        {
            _pool = pool;
            _index = index;
            _startGeneration = pool._generation;
            // Room to spare for what runs here besides the kernels (a posted job decodes an image).
            Thread = new Thread(Loop, maxStackSize: 16 << 20) { IsBackground = true, Name = $"resnet18 worker {index + 1}" };
        }

        public Thread Thread { get; }

        /// <summary>This worker's tile scratch, allocated by <see cref="MapStacks"/> (freed by the pool after the thread ends), or null.</summary>
        public float* Tiles;

        /// <summary>Maps this worker's stack and adopts the tile scratch MapStacks gave it (without one, kernels that keep tiles map their own at first use).</summary>
        private void MapThreadMemory()
        {
            StackPages.Map();
            if (Tiles != null) TileScratch.Use(Tiles);
        }

        public void Wake()
        {
            if (Interlocked.Exchange(ref _sleeping, 0) == 1) _wake.Release();
        }

        /// <summary>Work to run between layers (<see cref="RunOnWorker"/>); one at a time.</summary>
        public void Post(Action job)
        {
            if (Interlocked.CompareExchange(ref _job, job, null) != null)
                throw new InvalidOperationException("a worker runs one posted job at a time");
            Wake();
        }

        private Action? _job;

        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        private void Loop()
        {
            int seen = _startGeneration;
            bool mapped = false;
            // A new pool is usually built long before its first layer (weights load, an image decodes): wait
            // asleep for it rather than spinning on a core that work may need. Its stack and tile scratch are
            // mapped when MapStacks asks (or before the first layer), not at once: a thread that starts working at
            // once would make the next thread its creator starts wait for the scheduler's tick.
            int spins = _pool._spinsBeforeSleep;
            while (true)
            {
                while (_pool._generation == seen)
                {
                    if (!mapped && _pool._mapStacks)
                    {
                        MapThreadMemory();
                        mapped = true;
                        continue;
                    }
                    if (Interlocked.Exchange(ref _job, null) is { } job)
                    {
                        job();
                        spins = 0; // a layer is likely next (the CLI's inference follows its decoding)
                        continue;
                    }
                    if (++spins < _pool._spinsBeforeSleep)
                    {
                        Thread.SpinWait(20);
                        continue;
                    }
                    // Announce the sleep, then look again: the pool either sees the flag and releases us,
                    // or we see its new generation (or request) and take the flag back ourselves. The announcement
                    // must be a full fence: a plain store may still sit in this core's store buffer when the
                    // generation is read, and the pool, reading the flag as 0, would never release us (it hung
                    // one start in ~100).
                    Interlocked.Exchange(ref _sleeping, 1);
                    if ((_pool._generation != seen || (!mapped && _pool._mapStacks) || Volatile.Read(ref _job) != null)
                        && Interlocked.Exchange(ref _sleeping, 0) == 1) continue;
                    _wake.Wait();
                    // Woken for a layer, or only to map the stack: then back to sleep without polling (posted work,
                    // once run, polls instead, above).
                    spins = _pool._generation == seen ? _pool._spinsBeforeSleep : 0;
                }
                seen = _pool._generation;
                if (_pool._stopping)
                {
                    Interlocked.Exchange(ref _job, null)?.Invoke(); // posted before Dispose: its task still completes
                    return;
                }
                if (!mapped)
                {
                    MapThreadMemory();
                    mapped = true;
                }
                _pool.RunShare(_index + 1);
                Interlocked.Decrement(ref _pool._pending);
                spins = 0; // the next layer is usually microseconds away
            }
        }
    }
}
