using System.IO.Compression;

namespace ResNet.Runtime.Weights;

/// <summary>
/// A state_dict read from a file written by <c>torch.save</c> in its zip format: <c>data.pkl</c> (a pickle
/// naming each tensor's storage, dtype, offset, shape and stride) and one raw little-endian file per storage.
/// The pickle is read by <see cref="Unpickler"/>, which only understands what torch.save writes for tensors
/// and ordered dicts and refuses anything else without executing it. torch.save's legacy format
/// (<see cref="LegacyTorchSave"/>, PyTorch before 1.6) and safetensors files (<see cref="SafeTensors"/>) are read too,
/// each recognised by its first bytes. Weights stored as float16, bfloat16 or float64 are converted to float32
/// as PyTorch's load_state_dict converts them (<see cref="FloatFormats"/>).
/// </summary>
public sealed class StateDict
{
    private readonly Dictionary<string, Tensor> _tensors;
    private readonly NativeStorage? _native;

    private StateDict(string source, Dictionary<string, Tensor> tensors, NativeStorage? native = null)
    {
        Source = source;
        _tensors = tensors;
        _native = native;
    }

    /// <summary>Where the weights came from (for messages).</summary>
    public string Source { get; }

    /// <summary>Keys in file order.</summary>
    public IEnumerable<string> Keys => _tensors.Keys;

    /// <summary>The tensor named <paramref name="key"/>.</summary>
    public Tensor this[string key] => _tensors.TryGetValue(key, out var t) ? t : throw new WeightsException($"{Source}: missing key '{key}'");

    /// <summary>Builds a state_dict from tensors already in memory (tests, embedded weights).</summary>
    public static StateDict FromTensors(string source, IEnumerable<KeyValuePair<string, Tensor>> tensors) =>
        new(source, new Dictionary<string, Tensor>(tensors));

    /// <summary>Reads a torch.save file (the zip format or the legacy one) or a safetensors file.</summary>
    public static StateDict Load(string path) => Load(path, forPacking: false);

    /// <summary>
    /// Reads a torch.save file or a safetensors file to be folded and packed at once: its floating-point tensors'
    /// float32 values stay in one block of native memory (<see cref="NativeStorage"/>) until <see cref="Release"/>, which
    /// the caller must call when done.
    /// </summary>
    internal static StateDict LoadForPacking(string path) => Load(path, forPacking: true);

    /// <summary><see cref="LoadForPacking(string)"/> from a seekable stream; <paramref name="name"/> names it in errors.</summary>
    internal static StateDict LoadForPacking(Stream stream, string name) => Load(stream, name, forPacking: true);

    /// <summary>Frees the native memory of a state_dict read by <see cref="LoadForPacking(string)"/>; its tensors can no longer be read.</summary>
    internal void Release() => _native?.Dispose();

    private static StateDict Load(string path, bool forPacking)
    {
        FileStream stream;
        try
        {
            if (FileFailures.BeforeOpening(path) is { } reason) throw new WeightsException($"{path}: {reason}");
            stream = File.OpenRead(path);
        }
        catch (Exception e) when (FileFailures.Of(e) is { } reason) { throw new WeightsException($"{path}: {reason}"); }
        // Only the opening is mapped here: reading, the formats' readers name what they found wrong.
        using (stream) return Load(stream, path, forPacking);
    }

    /// <summary>Reads a torch.save file or a safetensors file from a seekable stream; <paramref name="name"/> names it in errors.</summary>
    public static StateDict Load(Stream stream, string name) => Load(stream, name, forPacking: false);

    private static StateDict Load(Stream stream, string name, bool forPacking)
    {
        if (SafeTensors.Matches(stream))
        {
            var tensors = SafeTensors.Read(stream, name, forPacking, out var native);
            return new StateDict(name, tensors, native);
        }
        if (LegacyTorchSave.Matches(stream))
        {
            var tensors = LegacyTorchSave.Read(stream, name, forPacking, out var native);
            return new StateDict(name, tensors, native);
        }
        ZipArchive zip;
        try
        {
            zip = new ZipArchive(stream, ZipArchiveMode.Read, leaveOpen: true);
        }
        catch (Exception e) when (e is InvalidDataException or ArgumentException or IOException or NotSupportedException)
        {
            throw new WeightsException(
                IsTar(stream) ? $"{name}: a tar archive, torch.save's oldest format, which torch.load(weights_only=True) refuses too; re-save it with torch.save(torch.load(f), f2)"
                : StartsLikeZip(stream) ? $"{name}: corrupt zip archive ({Printable.Quote(e.Message.TrimEnd('.'), 200)})"
                : $"{name}: not a torch.save or safetensors file (expected a zip archive with data.pkl, a legacy torch.save pickle, or a safetensors header)");
        }
        try
        {
            return Read(zip, name, forPacking);
        }
        catch (Exception e) when (e is InvalidDataException or IOException or NotSupportedException or ArgumentException)
        {
            // ZipArchive reads the central directory lazily: damage found there surfaces here.
            throw new WeightsException($"{name}: corrupt zip archive ({Printable.Quote(e.Message.TrimEnd('.'), 200)})");
        }
        finally
        {
            zip.Dispose();
        }
    }

    private static StateDict Read(ZipArchive zip, string name, bool forPacking)
    {
        if (zip.Entries.Count > WeightLimits.Tensors) throw new WeightsException($"{name}: zip archive has {zip.Entries.Count} entries; a state_dict has at most {WeightLimits.Tensors}");
        var pickle = zip.Entries.FirstOrDefault(e => e.FullName.EndsWith("/data.pkl", StringComparison.Ordinal) && e.FullName.Count(ch => ch == '/') == 1)
            ?? throw new WeightsException($"{name}: zip archive has no <name>/data.pkl; not a torch.save file");
        string prefix = pickle.FullName[..^"data.pkl".Length];
        byte[] pkl = TorchZip.ReadEntry(pickle, name, WeightLimits.PickleBytes);
        var native = forPacking ? NativeFor(zip, prefix) : null;
        try
        {
            var storages = new TorchZip.Storages(zip, prefix, name, TorchZip.IsBigEndian(zip, prefix, name));
            var tensors = new Unpickler(pkl, name).LoadStateDict(storages, native);
            return new StateDict(name, tensors, native);
        }
        catch
        {
            native?.Dispose();
            throw;
        }
    }

    /// <summary>
    /// A block for every storage the archive holds, as float32 values (twice the bytes their entries declare, in case
    /// they are float16 or bfloat16: the block is only reserved, its pages mapped as they are used; a line of alignment
    /// each), or none when they declare more than the unpickler would accept: it then refuses the file as it always did.
    /// </summary>
    private static NativeStorage? NativeFor(ZipArchive zip, string prefix)
    {
        long total = 0, reserve = 0;
        foreach (var e in zip.Entries)
        {
            if (!e.FullName.StartsWith(prefix + "data/", StringComparison.Ordinal)) continue;
            total += Math.Max(0, e.Length);
            reserve += 2 * Math.Max(0, e.Length) + 64;
            if (total > WeightLimits.StorageBytes) return null;
        }
        return reserve == 0 ? null : new NativeStorage(reserve);
    }

    /// <summary>The values of <paramref name="key"/> as float32 (converted from float16, bfloat16 or float64).</summary>
    public float[] Float(string key)
    {
        var t = this[key];
        return t.Data ?? throw NotFloating(key, t);
    }

    /// <summary>The float32 values of <paramref name="key"/>, where they are (no copy out of native memory).</summary>
    internal ReadOnlySpan<float> Values(string key)
    {
        var t = this[key];
        if (!t.HasValues) throw NotFloating(key, t);
        return t.Values;
    }

    /// <summary>
    /// Checks the state_dict holds exactly <paramref name="expected"/> (plus BatchNorm's int64
    /// num_batches_tracked counters, which eval never reads), as floating-point tensors with the exact shapes.
    /// </summary>
    public void CheckAgainst(IReadOnlyList<ParameterSpec> expected)
    {
        var wanted = expected.ToDictionary(p => p.Key);
        foreach (var p in expected)
        {
            if (!_tensors.TryGetValue(p.Key, out var t))
                throw new WeightsException(_tensors.ContainsKey("module." + p.Key)
                    ? $"{Source}: keys start with 'module.' ('module.{p.Key}'): saved from a DataParallel model; save model.module.state_dict() instead, which load_state_dict needs too"
                    : $"{Source}: missing key '{p.Key}' (expected shape {Tensor.Format(p.Shape)})");
            if (!t.HasValues) throw NotFloating(p.Key, t);
            if (!t.Shape.SequenceEqual(p.Shape))
                throw new WeightsException($"{Source}: '{p.Key}' has shape {Tensor.Format(t.Shape)}; expected {Tensor.Format(p.Shape)}{OtherClasses(expected, p, t.Shape)}");
        }
        foreach (var key in _tensors.Keys)
        {
            if (wanted.ContainsKey(key) || key.EndsWith(".num_batches_tracked", StringComparison.Ordinal)) continue;
            throw new WeightsException($"{Source}: unexpected key '{Printable.Quote(key)}' (not a parameter of this network)");
        }
    }

    /// <summary>
    /// The remedy when only the output layer's row count differs: a model fine-tuned to other classes, which the
    /// generated network (its sizes fixed when generated) cannot take without being generated for them.
    /// </summary>
    private static string OtherClasses(IReadOnlyList<ParameterSpec> expected, ParameterSpec p, int[] shape)
    {
        bool outputLayer = expected.Count >= 2 && (p == expected[^1] || p == expected[^2]);
        if (!outputLayer || shape.Length != p.Shape.Length || shape.Length == 0 || shape[0] == p.Shape[0] || !shape.AsSpan(1).SequenceEqual(p.Shape.AsSpan(1)))
            return "";
        return $": a model with {shape[0]} outputs (fine-tuned to other classes?) needs the network generated for them: set out_features to {shape[0]} in the layer spec (arch/resnet18.json) and build again";
    }

    private WeightsException NotFloating(string key, Tensor t) => new(FloatFormats.IsFloating(t.DType)
        ? $"{Source}: '{Printable.Quote(key)}' is {t.DType} without values"
        : $"{Source}: '{Printable.Quote(key)}' is {t.DType}; expected float32 (or float16, bfloat16, float64)");

    /// <summary>A tar header's "ustar" magic at byte 257.</summary>
    private static bool IsTar(Stream stream)
    {
        if (!stream.CanSeek || stream.Length < 512) return false;
        Span<byte> magic = stackalloc byte[5];
        stream.Position = 257;
        return stream.ReadAtLeast(magic, 5, throwOnEndOfStream: false) == 5 && magic.SequenceEqual("ustar"u8);
    }

    private static bool StartsLikeZip(Stream stream)
    {
        if (!stream.CanSeek || stream.Length < 4) return false;
        stream.Position = 0;
        return stream.ReadByte() == 'P' && stream.ReadByte() == 'K' && stream.ReadByte() == 3 && stream.ReadByte() == 4;
    }
}
