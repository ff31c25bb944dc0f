namespace ResNet.Runtime.Weights;

/// <summary>
/// What every weights reader (torch.save's zip and legacy formats, safetensors) holds a file to before it allocates
/// anything for it: a hostile file can declare any size, and these bound what it can make us allocate.
/// </summary>
internal static class WeightLimits
{
    /// <summary>
    /// A state_dict's pickle is well under a kilobyte per tensor (ResNet-18's: 20 kB), and a safetensors header
    /// smaller still; a larger one could build millions of objects, so the cap also bounds the unpickler's memory.
    /// </summary>
    public const long PickleBytes = 8L << 20;

    /// <summary>One storage, and all together: raw bytes plus the float copy stay well under 1 GiB. ResNet-18 needs 47 MB.</summary>
    public const long StorageBytes = 320L << 20;

    /// <summary>A state_dict has a few hundred tensors (and a zip one file per storage); far more is not one.</summary>
    public const int Tensors = 100_000;
}
