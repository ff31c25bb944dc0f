using System.Buffers.Binary;
using System.Numerics;
using System.Runtime.InteropServices;
using System.Text;

namespace ResNet.Runtime.Weights;

/// <summary>
/// A restricted unpickler for torch.save'd state_dicts, in the spirit of <c>torch.load(weights_only=True)</c>:
/// it interprets the pickle opcodes into plain data, and the only callables it knows are the handful
/// torch.save uses for tensors and ordered dicts. Any other global (os.system, builtins.eval, …) is refused
/// when it is named, before anything could call it; nothing is ever executed. It reads one pickle from
/// <paramref name="start"/>; <see cref="Position"/> is then where the next one begins (the legacy format is a
/// sequence of them, <see cref="LegacyTorchSave"/>). <paramref name="what"/> names the pickle in messages.
/// </summary>
internal sealed unsafe class Unpickler(byte[] data, string file, int start = 0, string what = "data.pkl")
{
    private static readonly Dictionary<string, (string DType, int Size)> Storages = new()
    {
        ["FloatStorage"] = ("float32", 4),
        ["DoubleStorage"] = ("float64", 8),
        ["HalfStorage"] = ("float16", 2),
        ["BFloat16Storage"] = ("bfloat16", 2),
        ["LongStorage"] = ("int64", 8),
        ["IntStorage"] = ("int32", 4),
        ["ShortStorage"] = ("int16", 2),
        ["CharStorage"] = ("int8", 1),
        ["ByteStorage"] = ("uint8", 1),
        ["BoolStorage"] = ("bool", 1),
    };

    private static readonly HashSet<string> Callables = new()
    {
        "collections.OrderedDict",
        "torch._utils._rebuild_tensor_v2",
        "torch._utils._rebuild_tensor",
        "torch._utils._rebuild_parameter",
    };

    /// <summary>Deeper nesting than any state_dict pickle has; bounds memory for hostile input.</summary>
    private const int MaxStack = 1 << 20;

    private readonly Stack<object?> _stack = new();
    private readonly Stack<int> _marks = new();
    private readonly Dictionary<long, object?> _memo = new();
    /// <summary>Storages read so far, by key: a byte[], or the tensor that is the whole storage.</summary>
    private readonly Dictionary<string, object> _storages = new();
    /// <summary>Every storage the pickle names, as it first names it (the legacy format's data is laid out by these).</summary>
    private readonly Dictionary<string, StorageRef> _referenced = new();
    private IStorageSource? _source;
    private NativeStorage? _native;
    private int _pos = start;

    private sealed record Global(string Module, string Name)
    {
        public string FullName => $"{Module}.{Name}";
    }

    internal sealed record StorageRef(string Key, string DType, int ElementSize, long Elements);

    private sealed class PyDict
    {
        public List<KeyValuePair<object?, object?>> Items { get; } = new();
    }

    private sealed class Mark;

    /// <summary>Where the pickle read last ended: the next byte after its STOP.</summary>
    public int Position => _pos;

    /// <summary>Whether the last failure was the data ending inside the pickle (the caller may have given only part of a file).</summary>
    public bool RanOut { get; private set; }

    /// <summary>The storages the state_dict's pickle names, by key (after <see cref="LoadStateDict"/>).</summary>
    public IReadOnlyDictionary<string, StorageRef> Referenced => _referenced;

    /// <summary>
    /// Reads the state_dict, its storages from <paramref name="storages"/>; with <paramref name="native"/>, a tensor
    /// that is a whole float32 storage keeps its values there rather than in an array of its own. Without
    /// <paramref name="storages"/> nothing is read: the tensors have no values, and the pass only checks the pickle and
    /// finds where it ends and which storages it names.
    /// </summary>
    public Dictionary<string, Tensor> LoadStateDict(IStorageSource? storages, NativeStorage? native = null)
    {
        _source = storages;
        _native = native;
        if (LoadValue() is not PyDict dict) throw Error($"{what} does not hold a dict of tensors (a state_dict)");
        var tensors = new Dictionary<string, Tensor>();
        foreach (var (key, value) in dict.Items)
        {
            if (key is not string name) throw Error("a state_dict key is not a string");
            if (value is not Tensor tensor) throw NotATensor(dict, name);
            if (!tensors.TryAdd(name, tensor)) throw Error($"duplicate key '{Printable.Quote(name)}'");
        }
        return tensors;
    }

    /// <summary>One pickle's value: plain data (numbers, strings, tuples as arrays, lists, dicts), or the state_dict's parts.</summary>
    public object? LoadValue()
    {
        try
        {
            return Run();
        }
        catch (OverflowException)
        {
            // Sizes, strides and offsets are multiplied checked: a product past 64 bits is a hostile file.
            throw Error("a tensor size, stride or offset overflows");
        }
    }

    /// <summary>
    /// A dict whose item <paramref name="name"/> is not a tensor: a training checkpoint (epoch, optimizer, …) holding
    /// the state_dict under one of its keys is said to be one, with how to save the state_dict alone, which is what
    /// load_state_dict takes too; anything else is named by its first such item.
    /// </summary>
    private WeightsException NotATensor(PyDict dict, string name)
    {
        foreach (var (key, value) in dict.Items)
        {
            if (key is string inner && value is PyDict nested && nested.Items.Count > 0 && nested.Items.All(i => i.Key is string && i.Value is Tensor))
                return Error($"a checkpoint holding a state_dict under '{Printable.Quote(inner)}', not a state_dict; save that alone: torch.save(checkpoint['{Printable.Quote(inner)}'], 'weights.pth')");
        }
        return Error($"'{Printable.Quote(name)}' is not a tensor");
    }

    private object? Run()
    {
        while (true)
        {
            byte op = U8();
            switch (op)
            {
                case 0x80: U8(); break; // PROTO
                case 0x95: Skip(8); break; // FRAME
                case (byte)'}': Push(new PyDict()); break;
                case (byte)']': Push(new List<object?>()); break;
                case (byte)')': Push(Array.Empty<object?>()); break;
                case (byte)'(': _marks.Push(_stack.Count); Push(new Mark()); break;
                case (byte)'q': _memo[U8()] = Peek(); break;
                case (byte)'r': _memo[U32()] = Peek(); break;
                case 0x94: _memo[_memo.Count] = Peek(); break; // MEMOIZE
                case (byte)'h': Push(Memo(U8())); break;
                case (byte)'j': Push(Memo(U32())); break;
                case (byte)'X': Push(Utf8(U32())); break;
                case 0x8c: Push(Utf8(U8())); break; // SHORT_BINUNICODE
                case 0x8d: // BINUNICODE8
                    {
                        ulong n = U64();
                        if (n > int.MaxValue) throw Error("string length out of range");
                        Push(Utf8((long)n));
                        break;
                    }
                case (byte)'T': Push(Utf8(U32())); break; // BINSTRING (py2 str)
                case (byte)'U': Push(Utf8(U8())); break; // SHORT_BINSTRING
                case (byte)'B': Push(Bytes(U32())); break;
                case (byte)'C': Push(Bytes(U8())); break;
                case (byte)'c': Push(MakeGlobal(Line(), Line())); break;
                case 0x93: // STACK_GLOBAL
                    {
                        var name = Pop() as string ?? throw Error("STACK_GLOBAL needs strings");
                        var module = Pop() as string ?? throw Error("STACK_GLOBAL needs strings");
                        Push(MakeGlobal(module, name));
                        break;
                    }
                case (byte)'Q': Push(PersistentLoad(Pop())); break;
                case (byte)'t': Push(PopToMark().ToArray()); break;
                case 0x85: Push(new[] { Pop() }); break;
                case 0x86: { var b = Pop(); var a = Pop(); Push(new[] { a, b }); break; }
                case 0x87: { var c = Pop(); var b = Pop(); var a = Pop(); Push(new[] { a, b, c }); break; }
                case (byte)'K': Push((long)U8()); break;
                case (byte)'M': Push((long)U16()); break;
                case (byte)'J': Push((long)BinaryPrimitives.ReadInt32LittleEndian(Take(4))); break;
                case 0x8a: Push(Long1()); break;
                case (byte)'G': Push(BinaryPrimitives.ReadDoubleBigEndian(Take(8))); break;
                case 0x88: Push(true); break;
                case 0x89: Push(false); break;
                case (byte)'N': Push(null); break;
                case (byte)'R':
                    {
                        var args = Pop() as object?[] ?? throw Error("REDUCE needs an argument tuple");
                        Push(Call(Pop(), args));
                        break;
                    }
                case (byte)'b': Build(Pop(), Peek()); break;
                case (byte)'s': { var v = Pop(); var k = Pop(); AsDict(Peek()).Items.Add(new(k, v)); break; }
                case (byte)'u':
                    {
                        var items = PopToMark();
                        if (items.Count % 2 != 0) throw Error("SETITEMS with an odd number of items");
                        var dict = AsDict(Peek());
                        for (int i = 0; i < items.Count; i += 2) dict.Items.Add(new(items[i], items[i + 1]));
                        break;
                    }
                case (byte)'a': { var v = Pop(); AsList(Peek()).Add(v); break; }
                case (byte)'e': { var items = PopToMark(); AsList(Peek()).AddRange(items); break; }
                case (byte)'.':
                    if (_stack.Count != 1) throw Error("pickle ends with a malformed stack");
                    return _stack.Pop();
                default:
                    throw Error($"unsupported pickle opcode 0x{op:x2} at byte {_pos - 1} (not something torch.save writes for a state_dict)");
            }
        }
    }

    private Global MakeGlobal(string module, string name)
    {
        var g = new Global(module, name);
        if (Callables.Contains(g.FullName) || (module == "torch" && Storages.ContainsKey(name))) return g;
        throw Error($"refuses to load global '{Printable.Quote(g.FullName)}': only torch.save's tensor and OrderedDict globals are allowed (nothing was executed)");
    }

    private object? Call(object? callable, object?[] args)
    {
        if (callable is not Global g) throw Error("REDUCE on something that is not a global");
        switch (g.FullName)
        {
            case "collections.OrderedDict":
                if (args.Length != 0) throw Error("OrderedDict called with arguments");
                return new PyDict();
            case "torch._utils._rebuild_parameter":
                if (args.Length < 1 || args[0] is not Tensor) throw Error("_rebuild_parameter without a tensor");
                return args[0];
            case "torch._utils._rebuild_tensor_v2":
            case "torch._utils._rebuild_tensor": // PyTorch 0.3's: the same first four arguments
                return RebuildTensor(args);
            default:
                throw Error($"'{g.FullName}' cannot be called");
        }
    }

    /// <summary>_rebuild_tensor_v2(storage, offset, size, stride, requires_grad, backward_hooks[, metadata]), or _rebuild_tensor(storage, offset, size, stride).</summary>
    private Tensor RebuildTensor(object?[] args)
    {
        if (args.Length < 4 || args[0] is not StorageRef storage || args[1] is not long offset
            || args[2] is not object?[] sizeTuple || args[3] is not object?[] strideTuple)
            throw Error("malformed _rebuild_tensor_v2 arguments");
        if (sizeTuple.Length != strideTuple.Length || sizeTuple.Length > 8) throw Error("tensor size and stride disagree or have too many dimensions");
        var shape = new int[sizeTuple.Length];
        var stride = new long[sizeTuple.Length];
        long elements = 1, lastIndex = offset;
        for (int i = 0; i < shape.Length; i++)
        {
            if (sizeTuple[i] is not long s || s < 0 || s > int.MaxValue) throw Error("tensor size out of range");
            if (strideTuple[i] is not long st || st < 0 || st > int.MaxValue) throw Error("tensor stride out of range");
            shape[i] = (int)s;
            stride[i] = st;
            elements = checked(elements * s);
            if (s > 0) lastIndex = checked(lastIndex + (s - 1) * st);
        }
        if (offset < 0 || (elements > 0 && lastIndex >= storage.Elements))
            throw Error($"tensor of shape {Tensor.Format(shape)} at offset {offset} reaches past its storage of {storage.Elements} elements");
        if (!FloatFormats.IsFloating(storage.DType) || _source == null) return new Tensor(storage.DType, shape, null);
        bool contiguous = IsContiguous(shape, stride);
        float[] values;
        if (BitConverter.IsLittleEndian && contiguous && offset == 0 && elements == storage.Elements && !_storages.ContainsKey(storage.Key))
        {
            // The common case (every tensor torch.save writes from a state_dict has a storage of its own): read
            // straight into the tensor's floats, their pages mapped in one call first. Through a byte[], ResNet-18's
            // 47 MB were faulted in twice, page by page: ~19,000 faults, each a trap to the host on this VM. Other
            // floating dtypes are converted on the way, a chunk at a time.
            CheckStorage(storage);
            bool f32 = storage.DType == "float32";
            var whole = Tensor.ToFill(storage.DType, shape, elements, _native, out var floats);
            if (f32) _source!.Read(storage.Key, sizeof(float), MemoryMarshal.AsBytes(floats));
            else _source!.ReadConverted(storage.Key, storage.DType, floats);
            // A later view of the storage reads its bytes from this tensor, which are the file's only for float32.
            if (f32) _storages[storage.Key] = whole;
            return whole;
        }
        // A view of a shared storage: from the storage's bytes, converted to float32 unless they are. Its values are an
        // array of their own, counted against the limit too: a stride of 0 (an expanded tensor) makes a few bytes of
        // storage up to 2^31 values, an 8 GB array (or an OutOfMemoryException past .NET's largest).
        var bytes = StorageBytes(storage);
        _totalValueBytes += elements * sizeof(float);
        if (_totalValueBytes > WeightLimits.StorageBytes) throw Error($"tensor values add up to more than {WeightLimits.StorageBytes >> 20} MiB");
        values = new float[elements];
        if (contiguous)
        {
            int size = storage.ElementSize;
            FloatFormats.Convert(bytes.Slice((int)(offset * size), (int)(elements * size)), storage.DType, values);
            return new Tensor(storage.DType, shape, values);
        }
        var index = new int[shape.Length];
        for (long i = 0; i < elements; i++)
        {
            long at = offset;
            for (int d = 0; d < shape.Length; d++) at += index[d] * stride[d];
            values[i] = FloatFormats.Read(bytes, at, storage.DType);
            for (int d = shape.Length - 1; d >= 0 && ++index[d] == shape[d]; d--) index[d] = 0;
        }
        return new Tensor(storage.DType, shape, values);
    }

    private static bool IsContiguous(int[] shape, long[] stride)
    {
        long expected = 1;
        for (int d = shape.Length - 1; d >= 0; d--)
        {
            if (shape[d] != 1 && stride[d] != expected) return false;
            expected *= shape[d];
        }
        return true;
    }

    /// <summary>
    /// persistent_id = ('storage', torch.XStorage, key, location, numel), and in the legacy format a sixth item, the
    /// view_metadata of PyTorch 0.3's storage views, which torch.save has written as None since.
    /// </summary>
    private StorageRef PersistentLoad(object? pid)
    {
        if (pid is not object?[] { Length: 5 or 6 } t || t[0] is not "storage" || t[1] is not Global g || t[2] is not string key || t[4] is not long numel)
            throw Error("unrecognised persistent id (expected a torch storage reference)");
        if (t.Length == 6 && t[5] != null) throw Error($"storage '{Printable.Quote(key)}' is a view of another storage (PyTorch 0.3 and earlier); not supported: re-save the file with a newer PyTorch");
        if (!Storages.TryGetValue(g.Name, out var dtype)) throw Error($"unknown storage type {Printable.Quote(g.FullName)}");
        // Divided, not multiplied: a count near 2^62 times the element size would wrap past the check.
        if (numel < 0 || numel > WeightLimits.StorageBytes / dtype.Size) throw Error($"storage '{Printable.Quote(key)}' declares {numel} elements; out of range");
        var storage = new StorageRef(key, dtype.DType, dtype.Size, numel);
        // torch.save refuses to write one storage as two dtypes; a file that names it so is not its.
        if (!_referenced.TryAdd(key, storage) && _referenced[key] != storage)
            throw Error($"storage '{Printable.Quote(key)}' is named as {numel} {dtype.DType} elements and as {_referenced[key].Elements} {_referenced[key].DType}");
        return storage;
    }

    private long _totalStorageBytes;

    /// <summary>The float32 values of the views read so far, which have arrays of their own.</summary>
    private long _totalValueBytes;

    private ReadOnlySpan<byte> StorageBytes(StorageRef s)
    {
        if (!_storages.TryGetValue(s.Key, out var storage))
        {
            CheckStorage(s);
            var bytes = new byte[s.Elements * s.ElementSize];
            _source!.Read(s.Key, s.ElementSize, bytes);
            _storages[s.Key] = storage = bytes;
        }
        return storage is Tensor whole ? MemoryMarshal.AsBytes(whole.Values) : (byte[])storage;
    }

    /// <summary>
    /// Counts storage <paramref name="s"/> against the total and checks that its archive holds the bytes its
    /// elements need, before any memory is allocated for it.
    /// </summary>
    private void CheckStorage(StorageRef s)
    {
        _totalStorageBytes += s.Elements * s.ElementSize;
        if (_totalStorageBytes > WeightLimits.StorageBytes) throw Error($"tensor storages add up to more than {WeightLimits.StorageBytes >> 20} MiB");
        long length = _source!.Length(s.Key);
        if (length != s.Elements * s.ElementSize)
            throw Error($"storage '{Printable.Quote(s.Key)}' has {length} bytes; its {s.Elements} {s.DType} elements need {s.Elements * s.ElementSize}");
    }

    /// <summary>BUILD sets an object's state: torch.save gives the OrderedDict a `_metadata` attribute we do not need.</summary>
    private void Build(object? state, object? target)
    {
        if (target is PyDict || target is Tensor) return;
        throw Error("BUILD on an object that is neither a dict nor a tensor");
    }

    private PyDict AsDict(object? o) => o as PyDict ?? throw Error("SETITEM on something that is not a dict");

    private List<object?> AsList(object? o) => o as List<object?> ?? throw Error("APPEND on something that is not a list");

    private object? Memo(long key) => _memo.TryGetValue(key, out var v) ? v : throw Error($"memo key {key} used before it was set");

    private void Push(object? o)
    {
        if (_stack.Count >= MaxStack) throw Error("pickle stack too deep");
        _stack.Push(o);
    }

    private object? Pop()
    {
        if (_stack.Count == 0 || _stack.Peek() is Mark) throw Error("pickle stack underflow");
        return _stack.Pop();
    }

    private object? Peek() => _stack.Count > 0 ? _stack.Peek() : throw Error("pickle stack underflow");

    private List<object?> PopToMark()
    {
        if (_marks.Count == 0) throw Error("no MARK on the stack");
        int mark = _marks.Pop();
        var items = new List<object?>();
        while (_stack.Count > mark + 1) items.Add(_stack.Pop());
        if (_stack.Count != mark + 1 || _stack.Pop() is not Mark) throw Error("corrupt MARK");
        items.Reverse();
        return items;
    }

    private ReadOnlySpan<byte> Take(long n)
    {
        if (n < 0 || _pos + n > data.Length)
        {
            RanOut = true;
            throw Error("pickle is truncated");
        }
        var span = data.AsSpan(_pos, (int)n);
        _pos += (int)n;
        return span;
    }

    private void Skip(int n) => Take(n);
    private byte U8() => Take(1)[0];
    private ushort U16() => BinaryPrimitives.ReadUInt16LittleEndian(Take(2));
    private uint U32() => BinaryPrimitives.ReadUInt32LittleEndian(Take(4));
    private ulong U64() => BinaryPrimitives.ReadUInt64LittleEndian(Take(8));
    private string Utf8(long n) => Encoding.UTF8.GetString(Take(n));
    private byte[] Bytes(long n) => Take(n).ToArray();

    /// <summary>LONG1: a long, or a BigInteger past 8 bytes (the legacy format's magic number is 10).</summary>
    private object Long1()
    {
        int n = U8();
        var b = Take(n);
        if (n > 8) return new BigInteger(b, isUnsigned: false, isBigEndian: false);
        long v = 0;
        for (int i = n - 1; i >= 0; i--) v = (v << 8) | b[i];
        if (n > 0 && n < 8 && (b[n - 1] & 0x80) != 0) v -= 1L << (8 * n);
        return v;
    }

    private string Line()
    {
        int end = Array.IndexOf(data, (byte)'\n', _pos);
        if (end < 0 || end - _pos > 256)
        {
            RanOut = end < 0;
            throw Error("pickle GLOBAL name is truncated");
        }
        var s = Encoding.ASCII.GetString(data, _pos, end - _pos);
        _pos = end + 1;
        return s;
    }

    private WeightsException Error(string reason) => new($"{file}: {reason}");
}
