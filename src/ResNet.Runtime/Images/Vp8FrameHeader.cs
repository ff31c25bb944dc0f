namespace ResNet.Runtime.Images;

/// <summary>
/// A VP8 key frame's header (RFC 6386 §9), read from the first partition as libwebp reads it: segments, the loop
/// filter, the token partitions, the quantizers and the token probabilities. What it leaves in
/// <see cref="Modes"/> is the first partition positioned at the first macroblock's modes.
/// </summary>
internal sealed class Vp8FrameHeader
{
    public const int Segments = 4;

    public int MbWidth, MbHeight;
    public Vp8BoolReader Modes;
    public Vp8BoolReader[] Partitions = [];

    public bool UpdateSegmentMap;
    public readonly byte[] SegmentProbabilities = [255, 255, 255];

    /// <summary>0 none, 1 simple, 2 normal (libwebp's filter_type).</summary>
    public int FilterType;
    /// <summary>Per segment and per [16×16, 4×4] prediction: the edge limit (0: no filtering), interior limit, HEV threshold.</summary>
    public readonly (int Limit, int Interior, int HevThreshold)[,] FilterStrengths = new (int, int, int)[Segments, 2];

    /// <summary>Per segment: Y1 DC/AC, Y2 DC/AC and UV DC/AC dequantization factors.</summary>
    public readonly int[,] Steps = new int[Segments, 6];

    /// <summary>Token probabilities, [type][band][context][node] flattened (4 × 8 × 3 × 11).</summary>
    public readonly byte[] TokenProbabilities = new byte[4 * 8 * 3 * 11];

    public bool UseSkipProbability;
    public int SkipProbability;

    /// <summary>Reads the header of the frame in <paramref name="b"/>[<paramref name="start"/>, +<paramref name="length"/>) (its 10-byte key frame tag already checked).</summary>
    public static Vp8FrameHeader Read(byte[] b, int start, int length, int width, int height, Func<string, Exception> corrupt)
    {
        var h = new Vp8FrameHeader { MbWidth = (width + 15) >> 4, MbHeight = (height + 15) >> 4 };
        int firstPartition = (b[start] | b[start + 1] << 8 | b[start + 2] << 16) >> 5;
        int pos = start + 10, left = length - 10;
        if (firstPartition > left) throw corrupt("bad partition length");
        var br = new Vp8BoolReader(b, pos, firstPartition);
        pos += firstPartition;
        left -= firstPartition;
        br.Flag(); // color space: only one is defined, and libwebp ignores the bit
        br.Flag(); // clamping type: reconstruction always clamps here, as in libwebp

        bool useSegments = br.Flag(), absoluteDelta = true;
        Span<int> quantizer = stackalloc int[Segments], filterStrength = stackalloc int[Segments];
        quantizer.Clear();
        filterStrength.Clear();
        if (useSegments)
        {
            h.UpdateSegmentMap = br.Flag();
            if (br.Flag())
            {
                absoluteDelta = br.Flag();
                for (int s = 0; s < Segments; s++) quantizer[s] = br.Flag() ? br.SignedLiteral(7) : 0;
                for (int s = 0; s < Segments; s++) filterStrength[s] = br.Flag() ? br.SignedLiteral(6) : 0;
            }
            if (h.UpdateSegmentMap)
                for (int s = 0; s < 3; s++) h.SegmentProbabilities[s] = (byte)(br.Flag() ? br.Literal(8) : 255);
        }
        if (br.Eof) throw corrupt("cannot parse segment header");

        bool simple = br.Flag();
        int level = br.Literal(6), sharpness = br.Literal(3);
        bool useDeltas = br.Flag();
        Span<int> refDelta = stackalloc int[4], modeDelta = stackalloc int[4];
        refDelta.Clear();
        modeDelta.Clear();
        if (useDeltas && br.Flag())
        {
            for (int i = 0; i < 4; i++) if (br.Flag()) refDelta[i] = br.SignedLiteral(6);
            for (int i = 0; i < 4; i++) if (br.Flag()) modeDelta[i] = br.SignedLiteral(6);
        }
        h.FilterType = level == 0 ? 0 : simple ? 1 : 2;
        if (br.Eof) throw corrupt("cannot parse filter header");

        // Token partitions: all sizes but the last's in 3 bytes each, the last takes the rest (and must not be empty).
        int lastPartition = (1 << br.Literal(2)) - 1;
        if (left < 3 * lastPartition) throw corrupt("cannot parse partitions");
        h.Partitions = new Vp8BoolReader[lastPartition + 1];
        int sizes = pos, partStart = pos + 3 * lastPartition, partLeft = left - 3 * lastPartition;
        for (int p = 0; p < lastPartition; p++)
        {
            int size = Math.Min(b[sizes + 3 * p] | b[sizes + 3 * p + 1] << 8 | b[sizes + 3 * p + 2] << 16, partLeft);
            h.Partitions[p] = new Vp8BoolReader(b, partStart, size);
            partStart += size;
            partLeft -= size;
        }
        h.Partitions[lastPartition] = new Vp8BoolReader(b, partStart, partLeft);
        if (partLeft <= 0) throw corrupt("cannot parse partitions");

        ReadQuantizers(ref br, h, useSegments, absoluteDelta, quantizer);
        br.Flag(); // refresh_entropy_probs: meaningless for a single frame

        var defaults = Vp8Tables.DefaultTokenProbabilities;
        var updates = Vp8Tables.TokenUpdateProbabilities;
        for (int i = 0; i < h.TokenProbabilities.Length; i++)
            h.TokenProbabilities[i] = (byte)(br.Bit(updates[i]) != 0 ? br.Literal(8) : defaults[i]);
        h.UseSkipProbability = br.Flag();
        if (h.UseSkipProbability) h.SkipProbability = br.Literal(8);

        FilterStrengthsOf(h, useSegments, absoluteDelta, filterStrength, level, sharpness, useDeltas, refDelta[0], modeDelta[0]);
        h.Modes = br;
        return h;
    }

    private static void ReadQuantizers(ref Vp8BoolReader br, Vp8FrameHeader h, bool useSegments, bool absoluteDelta, ReadOnlySpan<int> quantizer)
    {
        int baseQ = br.Literal(7);
        int y1Dc = br.Flag() ? br.SignedLiteral(4) : 0;
        int y2Dc = br.Flag() ? br.SignedLiteral(4) : 0;
        int y2Ac = br.Flag() ? br.SignedLiteral(4) : 0;
        int uvDc = br.Flag() ? br.SignedLiteral(4) : 0;
        int uvAc = br.Flag() ? br.SignedLiteral(4) : 0;
        var dc = Vp8Tables.DcSteps;
        var ac = Vp8Tables.AcSteps;
        for (int s = 0; s < Segments; s++)
        {
            int q = useSegments ? quantizer[s] + (absoluteDelta ? 0 : baseQ) : baseQ;
            h.Steps[s, 0] = dc[Math.Clamp(q + y1Dc, 0, 127)];
            h.Steps[s, 1] = ac[Math.Clamp(q, 0, 127)];
            h.Steps[s, 2] = dc[Math.Clamp(q + y2Dc, 0, 127)] * 2;
            // × 155/100, as libwebp computes it (bitwise equal over the table's range).
            h.Steps[s, 3] = Math.Max((ac[Math.Clamp(q + y2Ac, 0, 127)] * 101581) >> 16, 8);
            h.Steps[s, 4] = dc[Math.Clamp(q + uvDc, 0, 117)];
            h.Steps[s, 5] = ac[Math.Clamp(q + uvAc, 0, 127)];
        }
    }

    private static void FilterStrengthsOf(Vp8FrameHeader h, bool useSegments, bool absoluteDelta, ReadOnlySpan<int> segmentLevel,
        int level, int sharpness, bool useDeltas, int refDelta, int modeDelta)
    {
        for (int s = 0; s < Segments; s++)
        {
            int baseLevel = useSegments ? segmentLevel[s] + (absoluteDelta ? 0 : level) : level;
            for (int i4x4 = 0; i4x4 <= 1; i4x4++)
            {
                // Key frames are intra frames: only the first reference delta (and the first mode delta, for 4×4) apply.
                int l = baseLevel + (useDeltas ? refDelta + (i4x4 == 1 ? modeDelta : 0) : 0);
                l = Math.Clamp(l, 0, 63);
                if (l == 0)
                {
                    h.FilterStrengths[s, i4x4] = (0, 0, 0);
                    continue;
                }
                int interior = l;
                if (sharpness > 0)
                {
                    interior >>= sharpness > 4 ? 2 : 1;
                    interior = Math.Min(interior, 9 - sharpness);
                }
                interior = Math.Max(interior, 1);
                h.FilterStrengths[s, i4x4] = (2 * l + interior, interior, l >= 40 ? 2 : l >= 15 ? 1 : 0);
            }
        }
    }
}
