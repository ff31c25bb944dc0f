using System.Buffers.Binary;
using System.Text;

namespace ResNet.Runtime;

/// <summary>
/// Packed weights on disk, so a second start skips unpickling, folding and packing (about 130 of a cold
/// start's ~170 ms). A file is named by what its bytes depend on: the network, the instruction set, exact or
/// Winograd, a hash of the weights file's full path, then a hash of its size and modification time (as make
/// and ccache judge staleness) and of the generated code's signature. Its header repeats every layer's float
/// counts, which must equal the ones the network computes itself before a byte is used; anything else is a
/// miss. Files are written to a temporary name and renamed, so a reader never sees half a file; writing one
/// removes the files it supersedes (same weights path, older contents or code), so rebuilds and retrained
/// weights do not pile up ~100 MB each, and then bounds the rest (<see cref="Prune"/>): copies of other weights
/// files, which nothing supersedes, would otherwise grow the directory by ~100 MB per path for ever. Failing to
/// write is not an error.
/// </summary>
internal static class PackedCache
{
    private static ReadOnlySpan<byte> Magic => "RN18PACK"u8;
    /// <summary>
    /// 2: every range starts on a 64-byte boundary (so the file can be mapped in place); 3: names hashed with
    /// FNV-1a; 4: the same bytes written in 2 MiB blocks (<see cref="BlockWriter"/>), so that a file an earlier
    /// version wrote range by range, which the page cache keeps in small folios, is rewritten once.
    /// </summary>
    private const int Version = 4;

    /// <summary>
    /// The packed copy's file for the weights at <paramref name="weightsPath"/>, or null when nothing can stand for
    /// their contents: the copy is keyed by the path, size and modification time of the file holding them (so two
    /// links to one file share its copy, and a link pointed at another file finds that file's).
    /// </summary>
    public static string? FileFor(string directory, string weightsPath, string network, InstructionSet isa, string mode, string signature)
    {
        if (Holder(weightsPath) is not { } file) return null;
        string contents = Hash(string.Join("\n", file.Length, file.LastWriteTimeUtc.Ticks, signature, Version));
        return Path.Combine(directory, $"{Family(file.FullName, network, isa, mode)}{contents}.packed");
    }

    /// <summary>
    /// The file whose bytes are the weights: at the end of a symbolic link, since FileInfo describes the link itself,
    /// whose size and time stay the same when the file it names is rewritten (that stale copy was a hit). Null for a
    /// pipe or a device (a shell's &lt;(cat w.pth) links to "pipe:[…]"; a named pipe's size is 0): read once, with
    /// nothing to key a copy by, and a copy written for each would never be hit.
    /// </summary>
    private static FileInfo? Holder(string weightsPath)
    {
        var info = new FileInfo(weightsPath);
        if (info.LinkTarget != null) info = FileFailures.FinalTarget(info); // null for a loop: its reader says so
        return info is { Exists: true, Length: > 0 } ? info : null;
    }

    /// <summary>
    /// The name prefix every version of one weights file's packed copy shares (per network, ISA and mode).
    /// Concatenated, not interpolated, like <see cref="Hash"/>'s hex: an interpolated string of this many parts
    /// rents its buffer from the shared ArrayPool, whose first use in a process calibrates the processor-id cache
    /// (~0.2 ms here, on the loading's path; a run of the CLI otherwise never needs it).
    /// </summary>
    private static string Family(string weightsPath, string network, InstructionSet isa, string mode) =>
        string.Concat([network, "-", isa.ToString().ToLowerInvariant(), "-", mode, "-", Hash(weightsPath)[..12], "-"]);

    /// <summary>
    /// 96 bits of two FNV-1a hashes (different offset bases) of the UTF-8 text, in hex. Names files, guards
    /// nothing (the header is checked): a cryptographic hash here loaded OpenSSL, ~2 ms of every warm start.
    /// </summary>
    private static string Hash(string text)
    {
        ulong a = 0xcbf29ce484222325, b = 0x84222325cbf29ce4;
        foreach (byte c in Encoding.UTF8.GetBytes(text))
        {
            a = (a ^ c) * 0x100000001b3;
            b = (b ^ c) * 0x100000001b3;
        }
        b ^= b >> 29; // FNV's last byte reaches only the low bits: mix before taking the high word
        return a.ToString("x16") + ((uint)(b * 0x9E3779B97F4A7C15 >> 32)).ToString("x8");
    }

    /// <summary>
    /// Maps <paramref name="file"/> read-only if its layout matches <paramref name="layers"/> exactly, returning the
    /// mapping and each layer's weight and bias offsets in it; null on any mismatch, on error, or off Linux. The
    /// pages are the page cache's own, so nothing is copied or zeroed: a warm start reads ~100 MB less (the
    /// cache file is replaced by rename, never rewritten in place, so a mapping stays valid while a newer copy is written).
    /// </summary>
    public static unsafe Mapping? TryMap(string file, (long WeightFloats, long BiasFloats)[] layers)
    {
        if (!OperatingSystem.IsLinux()) return null;
        try
        {
            using var handle = File.OpenHandle(file, FileMode.Open, FileAccess.Read, FileShare.Read);
            var offsets = Offsets(layers);
            var length = (nuint)offsets[^1];
            if (RandomAccess.GetLength(handle) != offsets[^1]) return null;
            int fd = (int)handle.DangerousGetHandle();
            byte* p = (byte*)MemoryMap.Map(null, length, MemoryMap.ProtRead, MemoryMap.MapPrivate, fd, 0);
            if (p == MemoryMap.Failed) return null;
            // Huge-page advice before the first fault: pages not in the page cache (the first run after a reboot)
            // are then read into 2 MiB folios, which later runs map whole (measured here: 0.1 ms to touch and 0.02
            // ms to unmap the 97 MB, against 2.5 ms and 0.4 ms after a plain read). The header is read through the
            // mapping too: a read() of a cold file had filled its first two 2 MiB pieces with small folios.
            MemoryMap.Advise(p, length, MemoryMap.MadvHugePage);
            var header = Header(layers);
            if (!new ReadOnlySpan<byte>(p, header.Length).SequenceEqual(header))
            {
                MemoryMap.Unmap(p, length);
                return null;
            }
            // Every page is mapped now, rather than by faults during the first inference.
            var small = PageCacheFolios.Touch(p, length, PageCacheFolios.MaxFaults);
            return new Mapping(p, length, offsets, file, small);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return null;
        }
    }

    /// <summary>Fills the destinations from <paramref name="file"/> if it exists and its layout matches exactly.</summary>
    public static unsafe bool TryRead(string file, (IntPtr Weights, long WeightFloats, IntPtr Bias, long BiasFloats)[] layers)
    {
        try
        {
            using var handle = File.OpenHandle(file, FileMode.Open, FileAccess.Read, FileShare.Read);
            var sizes = layers.Select(l => (l.WeightFloats, l.BiasFloats)).ToArray();
            var offsets = Offsets(sizes);
            if (!HeaderMatches(handle, sizes, offsets[^1])) return false;
            // Layers are independent ranges of the file: read them in parallel (a page-cache copy of ~100 MB).
            bool ok = true;
            Parallel.For(0, layers.Length, i =>
            {
                var (w, wn, b, bn) = layers[i];
                if (!FileReads.ReadExactly(handle, (byte*)w, wn * sizeof(float), offsets[2 * i]) || !FileReads.ReadExactly(handle, (byte*)b, bn * sizeof(float), offsets[2 * i + 1]))
                    ok = false;
            });
            return ok;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return false;
        }
    }

    private static bool HeaderMatches(Microsoft.Win32.SafeHandles.SafeFileHandle handle, (long WeightFloats, long BiasFloats)[] layers, long length)
    {
        if (RandomAccess.GetLength(handle) != length) return false;
        var header = Header(layers);
        var actual = new byte[header.Length];
        return RandomAccess.Read(handle, actual, 0) == actual.Length && actual.AsSpan().SequenceEqual(header);
    }

    /// <summary>
    /// Where each layer's weights and bias start (weights of layer i at [2i], bias at [2i + 1]) and, last, the file
    /// length: after the header, every range starts on a cache line, so mapped weights load like allocated ones.
    /// </summary>
    private static long[] Offsets((long WeightFloats, long BiasFloats)[] layers)
    {
        var offsets = new long[2 * layers.Length + 1];
        long at = HeaderLength(layers.Length);
        for (int i = 0; i < layers.Length; i++)
        {
            at = (at + 63) & ~63L;
            offsets[2 * i] = at;
            at = (at + layers[i].WeightFloats * sizeof(float) + 63) & ~63L;
            offsets[2 * i + 1] = at;
            at += layers[i].BiasFloats * sizeof(float);
        }
        offsets[^1] = at;
        return offsets;
    }

    public static unsafe void TryWrite(string file, (IntPtr Weights, long WeightFloats, IntPtr Bias, long BiasFloats)[] layers)
    {
        try
        {
            Directory.CreateDirectory(Path.GetDirectoryName(file)!);
            bool written = WriteReplacing(file, handle =>
            {
                var sizes = layers.Select(l => (l.WeightFloats, l.BiasFloats)).ToArray();
                var offsets = Offsets(sizes);
                var writer = new BlockWriter(handle);
                var header = Header(sizes);
                fixed (byte* h = header) writer.Write(h, header.Length, 0);
                for (int i = 0; i < layers.Length; i++)
                {
                    var (w, wn, b, bn) = layers[i];
                    writer.Write((byte*)w, wn * sizeof(float), offsets[2 * i]);
                    writer.Write((byte*)b, bn * sizeof(float), offsets[2 * i + 1]);
                }
                writer.Finish();
                RandomAccess.SetLength(handle, offsets[^1]); // an empty last range would leave the file short
            });
            if (written) Prune(Path.GetDirectoryName(file)!, Path.GetFileName(file), Budget, DateTime.UtcNow);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // Not written, or not pruned: the cache is an optimisation.
        }
    }

    /// <summary>
    /// <paramref name="file"/>'s new contents, written under a temporary name and renamed into place, so that a
    /// reader never sees half a file; false, with no temporary left, if that failed.
    /// </summary>
    private static bool WriteReplacing(string file, Action<Microsoft.Win32.SafeHandles.SafeFileHandle> write)
    {
        string temp = $"{file}.{Environment.ProcessId}.tmp";
        try
        {
            using (var handle = File.OpenHandle(temp, FileMode.Create, FileAccess.Write, FileShare.None)) write(handle);
            File.Move(temp, file, overwrite: true);
            return true;
        }
        catch (Exception e)
        {
            try { File.Delete(temp); } catch (Exception) { /* nothing more to do: the cache is an optimisation */ }
            if (e is IOException or UnauthorizedAccessException) return false;
            throw; // not the file system's: the caller's to report, with no half-written file left behind
        }
    }

    /// <summary>Bytes of packed copies a directory keeps: all six variants of one weights file (~560 MB) and most of a second's.</summary>
    internal const long Budget = 1L << 30;

    /// <summary>A copy nobody has loaded for this long goes at the next write (as the launcher's old images do).</summary>
    internal static readonly TimeSpan Unused = TimeSpan.FromDays(7);

    /// <summary>
    /// After <paramref name="keep"/> was written into <paramref name="directory"/>, removes the packed copies it
    /// supersedes — the same family (weights path, network, ISA, mode) with other contents, or an older format,
    /// whose name this version no longer produces — then, most recently loaded first, keeps the others while they
    /// were loaded within <see cref="Unused"/> and fit <paramref name="budget"/> beside it. Loaded means the
    /// access time, which mapping or reading the file refreshes at least daily under relatime (on a noatime mount
    /// it stays the creation time, so this becomes oldest written first). Only files starting with our magic, or
    /// named as the family (a damaged copy of ours), are touched; one that cannot be removed is left.
    /// </summary>
    internal static void Prune(string directory, string keep, long budget, DateTime now)
    {
        string family = keep[..(keep.LastIndexOf('-') + 1)];
        long total = new FileInfo(Path.Combine(directory, keep)).Length;
        var others = new DirectoryInfo(directory).EnumerateFiles("*.packed")
            .Where(f => f.Name != keep)
            .Select(f => (File: f, Format: FormatOf(f.FullName)))
            .Where(f => f.Format > 0 || f.File.Name.StartsWith(family, StringComparison.Ordinal))
            .OrderByDescending(f => f.File.LastAccessTimeUtc);
        foreach (var (f, format) in others)
        {
            bool superseded = f.Name.StartsWith(family, StringComparison.Ordinal) || format < Version;
            if (!superseded && f.LastAccessTimeUtc >= now - Unused && total + f.Length <= budget)
            {
                total += f.Length;
                continue;
            }
            try { f.Delete(); } catch (Exception e) when (e is IOException or UnauthorizedAccessException) { /* left for a later write */ }
        }
        // "name.packed.PID.tmp", WriteReplacing's: a killed run's half-written copy, gone at the next write, which such a
        // run's next one makes.
        AbandonedFiles.Remove(directory, "*.packed.*.tmp", AbandonedFiles.PidBeforeExtension, now, Abandoned);
    }

    /// <summary>A temporary file goes when its writer is gone, however recent, or this old, whatever the process of that number.</summary>
    internal static readonly TimeSpan Abandoned = TimeSpan.FromHours(1);

    /// <summary>The format version a packed copy was written in; 0 for a file that is not one of ours (or unreadable).</summary>
    private static int FormatOf(string file)
    {
        try
        {
            Span<byte> start = stackalloc byte[12];
            using var handle = File.OpenHandle(file, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
            return RandomAccess.Read(handle, start, 0) == start.Length && start[..8].SequenceEqual(Magic)
                ? Math.Max(1, BinaryPrimitives.ReadInt32LittleEndian(start[8..])) : 0;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return 0;
        }
    }

    private static int HeaderLength(int layers) => Magic.Length + 8 + 16 * layers;

    /// <summary>Magic, version, layer count, then each layer's weight and bias float counts.</summary>
    private static byte[] Header((long WeightFloats, long BiasFloats)[] layers)
    {
        var header = new byte[HeaderLength(layers.Length)];
        Magic.CopyTo(header);
        BinaryPrimitives.WriteInt32LittleEndian(header.AsSpan(8), Version);
        BinaryPrimitives.WriteInt32LittleEndian(header.AsSpan(12), layers.Length);
        for (int i = 0; i < layers.Length; i++)
        {
            BinaryPrimitives.WriteInt64LittleEndian(header.AsSpan(16 + 16 * i), layers[i].WeightFloats);
            BinaryPrimitives.WriteInt64LittleEndian(header.AsSpan(24 + 16 * i), layers[i].BiasFloats);
        }
        return header;
    }

    /// <summary>
    /// Writes the file in whole 2 MiB blocks at 2 MiB offsets. The page cache keeps a file in folios as large as
    /// the writes that made it (ext4, Linux 6.x), and 97 MB of 2 MiB folios map a folio at a time: measured here,
    /// mapping every page (then with MAP_POPULATE) took 0.1 ms for a file written this way against 5–10 ms for one
    /// written range by range (and unmapping at exit 0.02 ms against 4 ms). Ranges must come in increasing order;
    /// gaps are zeros.
    /// </summary>
    private sealed unsafe class BlockWriter(Microsoft.Win32.SafeHandles.SafeFileHandle handle)
    {
        private const int BlockBytes = 2 << 20;
        private readonly byte[] _block = new byte[BlockBytes];
        private long _start; // file offset of _block[0]
        private int _used;   // bytes of _block placed so far (up to the end of the last range)

        public void Write(byte* p, long bytes, long offset)
        {
            while (bytes > 0)
            {
                while (offset >= _start + BlockBytes) Flush(BlockBytes);
                int at = (int)(offset - _start);
                int n = (int)Math.Min(bytes, BlockBytes - at);
                new ReadOnlySpan<byte>(p, n).CopyTo(_block.AsSpan(at));
                _used = Math.Max(_used, at + n);
                p += n;
                bytes -= n;
                offset += n;
            }
        }

        public void Finish() => Flush(_used);

        private void Flush(int bytes)
        {
            if (_used > 0) RandomAccess.Write(handle, _block.AsSpan(0, bytes), _start);
            Array.Clear(_block);
            _start += BlockBytes;
            _used = 0;
        }
    }

    /// <summary>
    /// A read-only mapping of a cache file; unmapped on Dispose (the network's weights point into it). The pieces of
    /// <paramref name="file"/> its touch found in small page-cache folios (<see cref="PageCacheFolios"/>) are then
    /// dropped, at most every ten minutes, to be read back whole by the next run.
    /// </summary>
    public sealed unsafe class Mapping(byte* address, nuint length, long[] offsets, string? file = null, List<int>? small = null) : IDisposable
    {
        private byte* _address = address;

        /// <summary>Layer <paramref name="i"/>'s packed weights in the mapping.</summary>
        public float* Weights(int i) => (float*)(_address + offsets[2 * i]);

        /// <summary>Layer <paramref name="i"/>'s bias in the mapping.</summary>
        public float* Bias(int i) => (float*)(_address + offsets[2 * i + 1]);

        /// <summary>The pieces Dispose asked the kernel to drop (null until then, or if it dropped none).</summary>
        internal int[]? DroppedPieces { get; private set; }

        /// <summary>Whether Dispose would drop pieces from the page cache: some were small, and none were dropped in the last ten minutes.</summary>
        internal bool RepairDue(DateTime now) => _address != null && small is { Count: > 0 } && file != null && PageCacheFolios.MayRepair(file, now);

        public void Dispose()
        {
            if (_address == null) return;
            var now = DateTime.UtcNow;
            bool repair = RepairDue(now) && PageCacheFolios.MarkRepaired(file!, now);
            MemoryMap.Unmap(_address, length);
            _address = null;
            if (repair && PageCacheFolios.Drop(file!, small!)) DroppedPieces = [.. small!];
        }
    }
}
