namespace ResNet.Runtime.Weights;

/// <summary>Seeded random weights of the right shapes (He-scaled, BatchNorm near identity): for benchmarks and tests without a file.</summary>
public static class RandomWeights
{
    /// <summary>A state_dict with every parameter of <paramref name="info"/>.</summary>
    public static StateDict For(NetworkInfo info, int seed)
    {
        var rng = new Random(seed);
        var tensors = new List<KeyValuePair<string, Tensor>>();
        foreach (var p in info.Parameters)
        {
            long count = p.Shape.Aggregate(1L, (a, b) => a * b);
            var data = new float[count];
            string leaf = p.Key[(p.Key.LastIndexOf('.') + 1)..];
            double fanIn = p.Shape.Length > 1 ? count / p.Shape[0] : 1;
            for (int i = 0; i < data.Length; i++)
            {
                double u = rng.NextDouble();
                data[i] = (float)(leaf switch
                {
                    "weight" when p.Shape.Length > 1 => (u * 2 - 1) * Math.Sqrt(6 / fanIn),
                    "weight" => 0.5 + u,
                    "running_var" => 0.5 + u,
                    _ => (u - 0.5) * 0.2,
                });
            }
            tensors.Add(new(p.Key, new Tensor("float32", p.Shape, data)));
        }
        return StateDict.FromTensors($"random weights (seed {seed})", tensors);
    }
}
