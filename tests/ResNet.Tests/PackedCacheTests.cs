using ResNet.Runtime;
using ResNet.Runtime.Weights;
using Xunit;

namespace ResNet.Tests;

/// <summary>The packed-weights cache: a hit gives the same network as packing afresh; anything doubtful is a miss.</summary>
public sealed class PackedCacheTests : IDisposable
{
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "resnet18-cache-" + Guid.NewGuid().ToString("N"));
    private readonly string _weights;

    public PackedCacheTests()
    {
        Directory.CreateDirectory(_dir);
        _weights = Path.Combine(_dir, "weights.pth");
        File.Copy(Path.Combine(Fixtures.Dir("tiny"), "weights.pth"), _weights);
    }

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private string Cache => Path.Combine(_dir, "cache");

    private static float[] Input => Fixtures.Npy(Path.Combine(Fixtures.Dir("tiny"), "input0.npy"));

    private TinyResNet Load(InstructionSet isa, bool exact, string? cache, bool map = true) =>
        TinyResNet.Load(_weights, new NetworkOptions { InstructionSet = isa, Exact = exact, PackedCache = cache, MapPackedCache = map });

    private float[] Logits(InstructionSet isa, bool exact, string? cache, bool map = true)
    {
        using var net = Load(isa, exact, cache, map);
        return net.Run(Input);
    }

    [Theory]
    [MemberData(nameof(ParityTests.IsasAndModes), MemberType = typeof(ParityTests))]
    public void HitEqualsFreshPacking(InstructionSet isa, bool exact)
    {
        var fresh = Logits(isa, exact, null);
        Assert.False(Directory.Exists(Cache));
        Assert.Equal(fresh, Logits(isa, exact, Cache)); // miss: packs, then writes the file
        var file = Assert.Single(Directory.GetFiles(Cache));
        var written = File.GetLastWriteTimeUtc(file);
        Assert.Equal(fresh, Logits(isa, exact, Cache)); // hit: mapped (on Linux)
        Assert.Equal(fresh, Logits(isa, exact, Cache, map: false)); // hit: read into memory
        Assert.Equal(written, File.GetLastWriteTimeUtc(file));
        Assert.Empty(Directory.GetFiles(Cache, "*.tmp"));
    }

    /// <summary>
    /// Weights from a stream (the CLI's embedded ones) go through the cache only when a file stands for them: keyed
    /// by it, the first load packs and writes, the next maps the copy, and both give what packing afresh gives.
    /// </summary>
    [Fact]
    public void AStreamIsCachedUnderTheFileThatStandsForIt()
    {
        var fresh = Logits(InstructionSet.Portable, false, null);
        float[] FromStream(string? identifiedBy, out bool mapped)
        {
            using var stream = File.OpenRead(_weights);
            using var net = TinyResNet.Load(stream, "embedded", new NetworkOptions { InstructionSet = InstructionSet.Portable, PackedCache = Cache }, identifiedBy);
            mapped = net.WeightsMapped;
            return net.Run(Input);
        }
        Assert.Equal(fresh, FromStream(null, out _));
        Assert.Equal(fresh, FromStream(Path.Combine(_dir, "no-such-binary"), out _));
        Assert.False(Directory.Exists(Cache) && Directory.GetFiles(Cache).Length > 0, "a stream nothing stands for was cached");
        string binary = Path.Combine(_dir, "binary");
        File.WriteAllText(binary, "stands for the weights");
        Assert.Equal(fresh, FromStream(binary, out bool first));
        Assert.False(first);
        Assert.Single(Directory.GetFiles(Cache, "*.packed"));
        Assert.Equal(fresh, FromStream(binary, out bool second));
        Assert.Equal(OperatingSystem.IsLinux(), second);
    }

    /// <summary>
    /// A network built for batches packs its batched variants' own weights too (F(4×4) for a batch where one image
    /// gets F(2×2), on some of TinyResNet's layers): they are cached in a file of their own, beside the batch-1
    /// copy, and a hit restores both sets.
    /// </summary>
    [Theory]
    [MemberData(nameof(ParityTests.Isas), MemberType = typeof(ParityTests))]
    public void ABatchNetworksCopyHoldsItsBatchedWeightsInAFileOfItsOwn(InstructionSet isa)
    {
        var batch = Enumerable.Range(0, 3).SelectMany(_ => Input).ToArray();
        float[] Run(string? cache, bool map = true)
        {
            using var net = TinyResNet.Load(_weights, new NetworkOptions { InstructionSet = isa, MaxBatch = 3, PackedCache = cache, MapPackedCache = map });
            return net.Run(batch);
        }
        Assert.Equal(Logits(isa, false, null), Logits(isa, false, Cache)); // the batch-1 copy
        var fresh = Run(null);
        Assert.Equal(fresh, Run(Cache)); // miss
        Assert.Equal(fresh, Run(Cache)); // hit, mapped
        Assert.Equal(fresh, Run(Cache, map: false)); // hit, read
        var files = Directory.GetFiles(Cache).Select(Path.GetFileName).Order().ToArray();
        Assert.Equal(2, files.Length);
        Assert.Contains(files, f => f!.Contains("-batched-"));
        Assert.Contains(files, f => f!.Contains("-winograd-"));
        Assert.True(new FileInfo(Path.Combine(Cache, files.Single(f => f!.Contains("-batched-"))!)).Length
            > new FileInfo(Path.Combine(Cache, files.Single(f => f!.Contains("-winograd-"))!)).Length);
    }

    [Fact]
    public void OnLinuxAHitIsMappedAndAMissIsNot()
    {
        using (var miss = Load(InstructionSet.Portable, false, Cache)) Assert.False(miss.WeightsMapped);
        using (var hit = Load(InstructionSet.Portable, false, Cache)) Assert.Equal(OperatingSystem.IsLinux(), hit.WeightsMapped);
        using (var read = Load(InstructionSet.Portable, false, Cache, map: false)) Assert.False(read.WeightsMapped);
    }

    [Fact]
    public void AMappedNetworkOutlivesItsFileBeingSuperseded()
    {
        Logits(InstructionSet.Portable, false, Cache);
        using var mapped = Load(InstructionSet.Portable, false, Cache);
        var before = mapped.Run(Input);
        // New weights at the same path: the next load writes a new copy and deletes the mapped one.
        File.SetLastWriteTimeUtc(_weights, DateTime.UtcNow.AddMinutes(1));
        var oldFile = Assert.Single(Directory.GetFiles(Cache));
        Logits(InstructionSet.Portable, false, Cache);
        Assert.NotEqual(oldFile, Assert.Single(Directory.GetFiles(Cache)));
        Assert.Equal(before, mapped.Run(Input));
    }

    [Fact]
    public unsafe void TheTouchReportsTheWholePiecesThatTookMoreFaultsThanTheLimit()
    {
        if (!OperatingSystem.IsLinux()) return;
        string file = PieceFile();
        byte* p = MapWhole(file, out nuint length);
        try
        {
            Assert.Equal([0, 1, 2], PageCacheFolios.Touch(p, length, maxFaults: -1)); // the partial fourth piece is never judged
            Assert.Null(PageCacheFolios.Touch(p, length, maxFaults: 0)); // mapped now: no fault at all
            Assert.Null(PageCacheFolios.Touch(p, PageCacheFolios.Piece - 1, maxFaults: -1));
        }
        finally
        {
            MemoryMap.Unmap(p, length);
        }
    }

    [Fact]
    public unsafe void APieceReadBackInSmallFoliosIsReported()
    {
        if (!OperatingSystem.IsLinux()) return;
        string file = PieceFile();
        using (var handle = File.OpenHandle(file))
        {
            int fd = (int)handle.DangerousGetHandle();
            Assert.Equal(0, PageCacheFolios.Advise(fd, 0, 0, PageCacheFolios.FadvDontNeed)); // the synced file leaves the page cache
            if (Resident(file) > 0) return; // a file system that keeps it (tmpfs): nothing to read back here
            // Read back 4 KiB at a time without readahead, as pages come back after a partial eviction: small folios.
            Assert.Equal(0, PageCacheFolios.Advise(fd, 0, 0, 1)); // POSIX_FADV_RANDOM
            var page = new byte[4096];
            for (long at = 0; at < RandomAccess.GetLength(handle); at += page.Length) RandomAccess.Read(handle, page, at);
        }
        byte* p = MapWhole(file, out nuint length);
        try
        {
            Assert.Equal([0, 1, 2], PageCacheFolios.Touch(p, length, PageCacheFolios.MaxFaults));
        }
        finally
        {
            MemoryMap.Unmap(p, length);
        }
    }

    /// <summary>Pages of <paramref name="file"/> in the page cache.</summary>
    private static unsafe int Resident(string file)
    {
        byte* p = MapWhole(file, out nuint length, advice: 0);
        try
        {
            return PageResidency.Present(p, length);
        }
        finally
        {
            MemoryMap.Unmap(p, length);
        }
    }

    /// <summary>A file of three and a half 2 MiB pieces of varied bytes, written and synced.</summary>
    private string PieceFile()
    {
        string file = Path.Combine(_dir, "pieces.packed");
        var bytes = new byte[7 * PageCacheFolios.Piece / 2];
        new Random(5).NextBytes(bytes);
        using (var f = new FileStream(file, FileMode.Create)) { f.Write(bytes); f.Flush(flushToDisk: true); }
        return file;
    }

    private static unsafe byte* MapWhole(string file, out nuint length, int advice = MemoryMap.MadvHugePage)
    {
        using var handle = File.OpenHandle(file);
        length = (nuint)RandomAccess.GetLength(handle);
        byte* p = (byte*)MemoryMap.Map(null, length, MemoryMap.ProtRead, MemoryMap.MapPrivate, (int)handle.DangerousGetHandle(), 0);
        Assert.True(p != MemoryMap.Failed);
        MemoryMap.Advise(p, length, advice);
        return p;
    }

    [Fact]
    public unsafe void DroppingPiecesKeepsTheirBytes()
    {
        if (!OperatingSystem.IsLinux()) return;
        string file = PieceFile();
        var bytes = File.ReadAllBytes(file);
        byte* p = MapWhole(file, out nuint length);
        PageCacheFolios.Touch(p, length, PageCacheFolios.MaxFaults);
        MemoryMap.Unmap(p, length);
        Assert.True(PageCacheFolios.Drop(file, [0, 1, 2]));
        Assert.Equal(bytes, File.ReadAllBytes(file));
        Assert.False(PageCacheFolios.Drop(Path.Combine(_dir, "missing.packed"), [0]));
    }

    [Fact]
    public unsafe void ADisposedMappingDropsItsSmallPiecesAtMostOncePerInterval()
    {
        if (!OperatingSystem.IsLinux()) return;
        string file = PieceFile();
        var bytes = File.ReadAllBytes(file);
        var old = DateTime.UtcNow - PageCacheFolios.RepairInterval - TimeSpan.FromMinutes(1);
        File.SetLastWriteTimeUtc(file, old);
        Assert.True(PageCacheFolios.MayRepair(file, DateTime.UtcNow));

        var whole = new PackedCache.Mapping(MapWhole(file, out nuint length), length, [0, 0], file, small: null);
        whole.Dispose();
        Assert.Null(whole.DroppedPieces); // nothing was small: nothing to drop
        Assert.True(PageCacheFolios.MayRepair(file, DateTime.UtcNow));

        var scattered = new PackedCache.Mapping(MapWhole(file, out length), length, [0, 0], file, small: [0, 2]);
        scattered.Dispose();
        Assert.Equal([0, 2], scattered.DroppedPieces!);
        // Dropping pieces marks the file, so that where they stay small the next runs do not drop them again.
        Assert.False(PageCacheFolios.MayRepair(file, DateTime.UtcNow));

        var recent = new PackedCache.Mapping(MapWhole(file, out length), length, [0, 0], file, small: [0, 2]);
        recent.Dispose();
        Assert.Null(recent.DroppedPieces);
        Assert.Equal(bytes, File.ReadAllBytes(file));
    }

    /// <summary>What <see cref="GeneratedNetwork.DisposeForExit"/> asks before leaving a mapping to the process's exit.</summary>
    [Fact]
    public unsafe void ARepairIsDueOnlyForAMappedFileWithSmallPiecesNotDroppedWithinTheInterval()
    {
        if (!OperatingSystem.IsLinux()) return;
        string file = PieceFile();
        var now = DateTime.UtcNow;
        File.SetLastWriteTimeUtc(file, now - PageCacheFolios.RepairInterval - TimeSpan.FromMinutes(1));
        var whole = new PackedCache.Mapping(MapWhole(file, out nuint length), length, [0, 0], file, small: null);
        Assert.False(whole.RepairDue(now));
        whole.Dispose();
        var scattered = new PackedCache.Mapping(MapWhole(file, out length), length, [0, 0], file, small: [1]);
        Assert.True(scattered.RepairDue(now));
        scattered.Dispose();
        Assert.Equal([1], scattered.DroppedPieces!);
        Assert.False(scattered.RepairDue(DateTime.UtcNow + 2 * PageCacheFolios.RepairInterval)); // unmapped: nothing left to repair
        var recent = new PackedCache.Mapping(MapWhole(file, out length), length, [0, 0], file, small: [1]);
        Assert.False(recent.RepairDue(DateTime.UtcNow)); // the drop above marked the file
        recent.Dispose();
    }

    [Fact]
    public void ANetworkDisposedForExitRunsNoMore()
    {
        Logits(InstructionSet.Portable, false, Cache);
        var mapped = Load(InstructionSet.Portable, false, Cache);
        Assert.Equal(OperatingSystem.IsLinux(), mapped.WeightsMapped);
        mapped.DisposeForExit();
        Assert.Throws<ObjectDisposedException>(() => mapped.Run(Input));
        mapped.DisposeForExit();
        mapped.Dispose();
        var packed = Load(InstructionSet.Portable, false, null);
        packed.DisposeForExit();
        Assert.Throws<ObjectDisposedException>(() => packed.Run(Input));
    }

    /// <summary>The weights file rewritten in place with every class's bias one more, a minute later.</summary>
    private void RewriteWithFcBiasPlusOne()
    {
        var sd = StateDict.Load(_weights);
        var tensors = sd.Keys.Where(k => sd[k].Data != null).Select(k => (k, k == "fc.bias" ? new Tensor("float32", sd[k].Shape, sd[k].Data!.Select(v => v + 1f).ToArray()) : sd[k])).ToList();
        using (var file = File.Create(_weights)) TorchSaveWriter.Write(file, tensors);
        File.SetLastWriteTimeUtc(_weights, DateTime.UtcNow.AddMinutes(1));
    }

    [Fact]
    public void ModesAndInstructionSetsKeepSeparateFiles()
    {
        Logits(InstructionSet.Portable, false, Cache);
        Logits(InstructionSet.Portable, true, Cache);
        Assert.Equal(2, Directory.GetFiles(Cache).Length);
    }

    [Fact]
    public void ChangedWeightsFileMissesAndReplacesItsCopy()
    {
        var before = Logits(InstructionSet.Portable, false, Cache);
        var oldFile = Assert.Single(Directory.GetFiles(Cache));
        // Same path, different contents and time: the old file must not be used.
        RewriteWithFcBiasPlusOne();
        var after = Logits(InstructionSet.Portable, false, Cache);
        Assert.Equal(before.Select(v => v + 1f).ToArray(), after, (a, b) => Math.Abs(a - b) < 1e-4f);
        // The new copy replaced the stale one instead of piling up beside it.
        Assert.NotEqual(oldFile, Assert.Single(Directory.GetFiles(Cache)));
    }

    /// <summary>
    /// A link's own size and time (what .NET's FileInfo gives for a link) do not change when the file it names is
    /// rewritten: keyed by them, the stale copy was a hit. Keyed by the file at the end of the links, it misses.
    /// </summary>
    [Fact]
    public void ALinkedWeightsFileIsKeyedByTheFileItNames()
    {
        string link = Path.Combine(_dir, "current.pth");
        File.CreateSymbolicLink(link, _weights);
        var options = new NetworkOptions { InstructionSet = InstructionSet.Portable, PackedCache = Cache };
        float[] before;
        using (var net = TinyResNet.Load(link, options)) before = net.Run(Input);
        RewriteWithFcBiasPlusOne();
        using (var net = TinyResNet.Load(link, options))
            Assert.Equal(before.Select(v => v + 1f).ToArray(), net.Run(Input), (a, b) => Math.Abs(a - b) < 1e-4f);
    }

    /// <summary>A pipe (a shell's &lt;(cat w.pth)) is read once and has no size or time to key a copy by: never cached.</summary>
    [Fact]
    public async Task WeightsFromAPipeAreNotCached()
    {
        var fresh = Logits(InstructionSet.Portable, false, null);
        using var reader = new System.IO.Pipes.AnonymousPipeServerStream(System.IO.Pipes.PipeDirection.In);
        var bytes = File.ReadAllBytes(_weights);
        var writing = Task.Run(() =>
        {
            using var writer = new System.IO.Pipes.AnonymousPipeClientStream(System.IO.Pipes.PipeDirection.Out, reader.ClientSafePipeHandle);
            writer.Write(bytes);
        });
        string path = $"/proc/self/fd/{reader.SafePipeHandle.DangerousGetHandle()}";
        using (var net = TinyResNet.Load(path, new NetworkOptions { InstructionSet = InstructionSet.Portable, PackedCache = Cache }))
            Assert.Equal(fresh, net.Run(Input));
        await writing;
        Assert.False(Directory.Exists(Cache) && Directory.EnumerateFileSystemEntries(Cache).Any());
    }

    [Fact]
    public void CopiesOfOtherWeightsFilesStay()
    {
        string other = Path.Combine(_dir, "other.pth");
        File.Copy(_weights, other);
        Logits(InstructionSet.Portable, false, Cache);
        using (TinyResNet.Load(other, new NetworkOptions { InstructionSet = InstructionSet.Portable, PackedCache = Cache })) { }
        Assert.Equal(2, Directory.GetFiles(Cache).Length);
    }

    [Fact]
    public void WritingACopyRemovesOlderFormatsOnly()
    {
        Directory.CreateDirectory(Cache);
        string older = Path.Combine(Cache, "ResNet18-avx512-winograd-0123456789ab-0123456789abcdef01234567.packed");
        File.WriteAllBytes(older, [.. "RN18PACK"u8, 1, 0, 0, 0, 0, 0, 0, 0]); // format 1
        string foreign = Path.Combine(Cache, "notes.packed");
        File.WriteAllText(foreign, "not ours");
        Logits(InstructionSet.Portable, false, Cache);
        Assert.False(File.Exists(older));
        Assert.True(File.Exists(foreign));
        Assert.Equal(2, Directory.GetFiles(Cache).Length);
    }

    [Fact]
    public void DamagedFileIsAMissAndIsRewritten()
    {
        var fresh = Logits(InstructionSet.Portable, false, Cache);
        var file = Directory.GetFiles(Cache).Single();
        foreach (var damage in new Action[]
        {
            () => { using var f = File.Open(file, FileMode.Open); f.SetLength(f.Length - 4); },
            () => { var b = File.ReadAllBytes(file); b[20] ^= 1; File.WriteAllBytes(file, b); }, // a layer's float count
            () => File.WriteAllText(file, "not a cache file"),
        })
        {
            damage();
            Assert.Equal(fresh, Logits(InstructionSet.Portable, false, Cache, map: false));
            damage();
            Assert.Equal(fresh, Logits(InstructionSet.Portable, false, Cache));
            Assert.Equal(fresh, Logits(InstructionSet.Portable, false, Cache));
        }
    }

    /// <summary>A packed copy as far as pruning can tell (magic, format 4), sparse at <paramref name="bytes"/>, last loaded at <paramref name="loaded"/>.</summary>
    private string FakeCopy(string name, long bytes, DateTime loaded)
    {
        Directory.CreateDirectory(Cache);
        string path = Path.Combine(Cache, name);
        using (var f = File.Create(path))
        {
            f.Write([.. "RN18PACK"u8, 4, 0, 0, 0]);
            f.SetLength(bytes);
        }
        File.SetLastAccessTimeUtc(path, loaded);
        return path;
    }

    [Fact]
    public void PruningKeepsTheMostRecentlyLoadedCopiesThatFitTheBudget()
    {
        var now = DateTime.UtcNow;
        const long MB = 1 << 20;
        string kept = FakeCopy("ResNet18-avx512-winograd-000000000001-aaaa.packed", 100 * MB, now);
        string recent = FakeCopy("ResNet18-avx512-winograd-000000000002-aaaa.packed", 300 * MB, now.AddHours(-1));
        string older = FakeCopy("ResNet18-avx2-winograd-000000000003-aaaa.packed", 500 * MB, now.AddDays(-1));
        string small = FakeCopy("ResNet18-avx512-exact-000000000004-aaaa.packed", 50 * MB, now.AddDays(-2));
        string stale = FakeCopy("ResNet18-avx512-exact-000000000005-aaaa.packed", 1 * MB, now.AddDays(-8));
        string sibling = FakeCopy("ResNet18-avx512-winograd-000000000001-bbbb.packed", 1 * MB, now); // same family, other contents
        string damaged = Path.Combine(Cache, "ResNet18-avx512-winograd-000000000001-cccc.packed");
        File.WriteAllText(damaged, "no magic, but named as ours");
        string foreign = Path.Combine(Cache, "notes.packed");
        File.WriteAllText(foreign, "not ours");
        File.SetLastAccessTimeUtc(foreign, now.AddYears(-1));

        PackedCache.Prune(Cache, Path.GetFileName(kept), 600 * MB, now);

        // 100 + 300 fit; 500 more would not, so the older copy goes, yet the smaller one after it still fits.
        Assert.True(File.Exists(kept));
        Assert.True(File.Exists(recent));
        Assert.False(File.Exists(older));
        Assert.True(File.Exists(small));
        Assert.False(File.Exists(stale)); // unused for more than a week, however small
        Assert.False(File.Exists(sibling)); // superseded by the copy just written
        Assert.False(File.Exists(damaged)); // the same family, however damaged
        Assert.True(File.Exists(foreign)); // not a packed copy: never ours to delete
    }

    [Fact]
    public void AKilledWritersTemporaryFileGoesAtTheNextWrite()
    {
        // A run killed while writing its copy left ~97 MB under "name.packed.PID.tmp" for ever.
        var now = DateTime.UtcNow;
        string kept = FakeCopy("ResNet18-avx512-winograd-000000000001-aaaa.packed", 1 << 20, now);
        string Temp(string pid, DateTime written)
        {
            string path = Path.Combine(Cache, $"ResNet18-avx512-winograd-000000000002-aaaa.packed.{pid}.tmp");
            File.WriteAllText(path, "half");
            File.SetLastWriteTimeUtc(path, written);
            return path;
        }
        string gone = Temp("2147483647", now); // no such process
        string writing = Temp(Environment.ProcessId.ToString(), now); // a live writer's
        string old = Temp("1", now - PackedCache.Abandoned - TimeSpan.FromMinutes(1)); // a live process, a number reused
        string foreign = Path.Combine(Cache, "notes.packed.x.tmp");
        File.WriteAllText(foreign, "not ours");
        File.SetLastWriteTimeUtc(foreign, now.AddYears(-1));

        PackedCache.Prune(Cache, Path.GetFileName(kept), PackedCache.Budget, now);

        Assert.False(File.Exists(gone));
        Assert.True(File.Exists(writing));
        Assert.False(File.Exists(old));
        Assert.True(File.Exists(foreign));
        Assert.True(File.Exists(kept));
    }

    [Fact]
    public void WritingACopyPrunesCopiesOfOtherWeightsFilesUnusedForAWeek()
    {
        string stale = FakeCopy("ResNet18-avx512-winograd-000000000009-aaaa.packed", 1 << 20, DateTime.UtcNow - PackedCache.Unused - TimeSpan.FromHours(1));
        string used = FakeCopy("ResNet18-avx512-winograd-00000000000a-aaaa.packed", 1 << 20, DateTime.UtcNow.AddDays(-1));
        Logits(InstructionSet.Portable, false, Cache);
        Assert.False(File.Exists(stale));
        Assert.True(File.Exists(used));
        Assert.Equal(2, Directory.GetFiles(Cache).Length);
    }

    [Fact]
    public void UnwritableDirectoryStillLoads()
    {
        File.WriteAllText(Cache, "a file where the directory should be");
        Assert.Equal(Logits(InstructionSet.Portable, false, null), Logits(InstructionSet.Portable, false, Cache));
    }
}
