namespace ResNet.Runtime.Weights;

/// <summary>
/// One block of native memory (2 MiB pages where Linux gives them, see <see cref="HugePages"/>) that a state_dict
/// read only to be packed keeps its float32 storages in, handed out front to back. On a VM whose page faults trap
/// to the host each fresh 4 KiB page of a managed array cost ~8 µs when the file's bytes were copied into it and
/// ~8 µs more when the folding first read it (a C probe over ResNet-18's 47 MB: ~190 ms in small pages, ~18 in
/// huge ones). Released as soon as the packing is done; a tensor read after that throws.
/// </summary>
internal sealed unsafe class NativeStorage : IDisposable
{
    private byte* _base;
    private readonly nuint _bytes;
    private nuint _used;

    public NativeStorage(long bytes)
    {
        _bytes = (nuint)Math.Max(1, bytes);
        _base = (byte*)HugePages.Allocate(_bytes);
    }

    /// <summary>Room for <paramref name="elements"/> floats, cache-line aligned, or null when the block is full or released.</summary>
    public float* TryTake(long elements)
    {
        nuint need = ((nuint)elements * sizeof(float) + 63) & ~(nuint)63;
        if (_base == null || need > _bytes - _used) return null;
        float* p = (float*)(_base + _used);
        _used += need;
        return p;
    }

    /// <summary><paramref name="length"/> floats at <paramref name="values"/>, a pointer this block handed out.</summary>
    public ReadOnlySpan<float> Span(float* values, int length)
    {
        ObjectDisposedException.ThrowIf(_base == null, this);
        return new ReadOnlySpan<float>(values, length);
    }

    public void Dispose()
    {
        if (_base == null) return;
        HugePages.Free(_base, _bytes);
        _base = null;
    }
}
