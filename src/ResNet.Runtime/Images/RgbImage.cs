namespace ResNet.Runtime.Images;

/// <summary>An 8-bit RGB image, rows top to bottom, pixels interleaved R, G, B.</summary>
public sealed class RgbImage
{
    private byte[]? _pixels;
    private RowSource? _source;
    private readonly bool _pixelsKept;

    /// <summary>An image over <paramref name="pixels"/> (width × height × 3 bytes).</summary>
    public RgbImage(int width, int height, byte[] pixels)
    {
        (Width, Height) = (width, height);
        _pixels = pixels.Length == (long)width * height * 3 ? pixels : throw new ArgumentException("pixel buffer size does not match the dimensions");
    }

    /// <summary>An image over <paramref name="pixels"/>, which come from <see cref="ScratchBuffers"/> if <paramref name="kept"/>.</summary>
    internal RgbImage(int width, int height, byte[] pixels, bool kept) : this(width, height, pixels) => _pixelsKept = kept;

    /// <summary>An image whose rows <paramref name="source"/> produces when they are first needed.</summary>
    internal RgbImage(int width, int height, RowSource source) => (Width, Height, _source) = (width, height, source);

    /// <summary>Width in pixels.</summary>
    public int Width { get; }
    /// <summary>Height in pixels.</summary>
    public int Height { get; }

    /// <summary>Width × height × 3 bytes (a decoded JPEG's are color-converted from its planes when first read).</summary>
    public byte[] Pixels => Volatile.Read(ref _pixels) ?? Materialize();

    /// <summary>
    /// While <see cref="Pixels"/> has not been read, what produces the rows: a resize converts a JPEG's rows as it
    /// reads them, so the whole RGB image (4 bytes a pixel of memory to fault in and stream through) never exists.
    /// </summary>
    internal RowSource? PendingRows => Volatile.Read(ref _pixels) == null ? Volatile.Read(ref _source) : null;

    /// <summary>
    /// Gives back the scratch memory the image is made from (a JPEG's planes, a PNG's scanlines or pixels, decoded for a tensor: <see cref="ScratchBuffers"/>).
    /// Only for an image nothing reads any more.
    /// </summary>
    internal void ReleaseScratch()
    {
        Interlocked.Exchange(ref _source, null)?.ReleaseScratch();
        if (_pixelsKept && Interlocked.Exchange(ref _pixels, null) is byte[] pixels) ScratchBuffers.Return(pixels);
    }

    private byte[] Materialize()
    {
        var source = Volatile.Read(ref _source) ?? throw new InvalidOperationException("the image's scratch memory was released");
        var pixels = source.All(Width, Height);
        Interlocked.CompareExchange(ref _pixels, pixels, null);
        Volatile.Write(ref _source, null); // the planes are no longer needed
        return _pixels!;
    }
}

/// <summary>Produces an image's RGB rows on demand (<see cref="RgbImage.PendingRows"/>).</summary>
internal abstract unsafe class RowSource
{
    /// <summary>Inner-loop steps to produce a row (<see cref="ImageParallel"/>'s measure of work).</summary>
    public abstract long WorkPerRow { get; }

    /// <summary>Rows [<paramref name="from"/>, <paramref name="to"/>), width × 3 bytes each, one after another at <paramref name="output"/>.</summary>
    public abstract void Rows(int from, int to, byte* output);

    /// <summary>Gives back scratch memory the rows were made from, if any; no row is asked for afterwards.</summary>
    public virtual void ReleaseScratch() { }

    /// <summary>Every row, as one array (split across the cores when worth it).</summary>
    public byte[] All(int width, int height)
    {
        var pixels = GC.AllocateUninitializedArray<byte>(checked(width * height * 3));
        ImageParallel.ForRows(height, WorkPerRow, (from, to) =>
        {
            fixed (byte* p = pixels) Rows(from, to, p + (long)from * width * 3);
        });
        return pixels;
    }
}
