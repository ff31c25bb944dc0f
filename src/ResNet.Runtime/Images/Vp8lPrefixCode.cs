namespace ResNet.Runtime.Images;

/// <summary>
/// A canonical prefix code of the lossless format (codes assigned by length, then symbol, as in Deflate; read first
/// bit first from the stream's low bits). Built only from what libwebp accepts: lengths up to 15 forming a complete
/// code, or a single symbol of any length, which is then read with no bits at all.
/// </summary>
internal sealed class Vp8lPrefixCode
{
    private const int RootBits = 8;
    private const int MaxLength = 15;

    private readonly int _single;
    // Root lookup: (symbol << 4) | length for codes up to RootBits long (symbols stay below 4096: 256 + 24 + a
    // 2048-entry color cache); 0 sends the read to the canonical walk.
    private readonly ushort[] _root = new ushort[1 << RootBits];
    private readonly int[] _counts = new int[MaxLength + 1];
    private readonly int[] _sorted;

    private Vp8lPrefixCode(int[] sorted, int single = -1) => (_sorted, _single) = (sorted, single);

    /// <summary>One symbol, read with no bits.</summary>
    public bool IsSingleSymbol => _single >= 0;

    /// <summary>The code with these lengths (0: the symbol is not coded), or null where libwebp refuses it.</summary>
    public static Vp8lPrefixCode? Build(ReadOnlySpan<int> lengths)
    {
        Span<int> counts = stackalloc int[MaxLength + 1];
        counts.Clear();
        int coded = 0, lastCoded = 0;
        for (int s = 0; s < lengths.Length; s++)
        {
            int l = lengths[s];
            if (l > MaxLength) return null;
            if (l == 0) continue;
            counts[l]++;
            coded++;
            lastCoded = s;
        }
        if (coded == 0) return null;
        if (coded == 1) return new Vp8lPrefixCode([], lastCoded);
        // Complete: every branch at every level used, none over-subscribed.
        long open = 1;
        for (int l = 1; l <= MaxLength; l++)
        {
            open = 2 * open - counts[l];
            if (open < 0) return null;
        }
        if (open != 0) return null;

        var sorted = new int[coded];
        Span<int> offsets = stackalloc int[MaxLength + 2];
        offsets[1] = 0;
        for (int l = 1; l <= MaxLength; l++) offsets[l + 1] = offsets[l] + counts[l];
        for (int s = 0; s < lengths.Length; s++)
            if (lengths[s] != 0) sorted[offsets[lengths[s]]++] = s;
        var code = new Vp8lPrefixCode(sorted);
        counts.CopyTo(code._counts);

        // Root entries: canonical codes of up to RootBits, bit-reversed (the stream gives the code's first bit lowest).
        int next = 0, index = 0;
        for (int l = 1; l <= RootBits; l++)
        {
            for (int i = 0; i < counts[l]; i++, next++, index++)
            {
                int reversed = Reverse(next, l);
                for (int fill = reversed; fill < 1 << RootBits; fill += 1 << l) code._root[fill] = (ushort)((sorted[index] << 4) | l);
            }
            next <<= 1;
        }
        return code;
    }

    private static int Reverse(int code, int length)
    {
        int r = 0;
        for (int i = 0; i < length; i++, code >>= 1) r = (r << 1) | (code & 1);
        return r;
    }

    public int Read(ref Vp8lBitReader br)
    {
        if (_single >= 0) return _single;
        uint bits = br.Peek(RootBits);
        int entry = _root[bits];
        if (entry != 0)
        {
            br.Skip(entry & 15);
            return entry >> 4;
        }
        // A code longer than the root: its further bits as libwebp's second-level lookup gets them (read again 8 bits
        // on, which differs only past the end of the data), then the canonical code walked a bit at a time (puff's decode).
        bits |= br.PeekAt(RootBits, MaxLength - RootBits) << RootBits;
        int code = 0, first = 0, index = 0;
        for (int l = 1; l <= MaxLength; l++, bits >>= 1)
        {
            code |= (int)(bits & 1);
            int count = _counts[l];
            if (code - first < count)
            {
                br.Skip(l);
                return _sorted[index + code - first];
            }
            index += count;
            first = (first + count) << 1;
            code <<= 1;
        }
        return _sorted[0]; // not reached: the code is complete
    }
}
