namespace ResNet.Runtime;

/// <summary>One ranked class: its index, softmax probability and (when known) label.</summary>
public readonly record struct Prediction(int Index, float Probability, string? Label);

/// <summary>Softmax and top-k over logits.</summary>
public static class Classification
{
    /// <summary>Softmax in double, stable for large logits.</summary>
    public static float[] Softmax(ReadOnlySpan<float> logits)
    {
        float max = float.NegativeInfinity;
        foreach (var v in logits) max = Math.Max(max, v);
        double sum = 0;
        foreach (var v in logits) sum += Math.Exp(v - max);
        var p = new float[logits.Length];
        for (int i = 0; i < logits.Length; i++) p[i] = (float)(Math.Exp(logits[i] - max) / sum);
        return p;
    }

    /// <summary>The <paramref name="k"/> most probable classes, best first; ties keep the lower index first.</summary>
    public static Prediction[] TopK(ReadOnlySpan<float> logits, int k, IReadOnlyList<string>? labels = null)
    {
        var p = Softmax(logits);
        var l = logits.ToArray();
        var order = Enumerable.Range(0, p.Length).OrderByDescending(i => l[i]).ThenBy(i => i).Take(Math.Max(0, k)).ToArray();
        return order.Select(i => new Prediction(i, p[i], labels != null && i < labels.Count ? labels[i] : null)).ToArray();
    }
}
