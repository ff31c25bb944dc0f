namespace ResNet.Runtime.Images;

/// <summary>
/// Hears of a tensor that <see cref="ImageNetTransform.FromFile"/> makes top to bottom while its image decodes, and
/// gives the thread making it work for the moments it would wait for the decoder: the CLI's one-image run packs
/// the rows into the network and runs conv1 on them then (<see cref="GeneratedNetwork.StreamInputRows"/>), so the
/// rows themselves, which the decoding's end waits for, are never late.
/// </summary>
public interface ITensorRows
{
    /// <summary>Rows [0, <paramref name="rows"/>) of every channel of <paramref name="tensor"/> are final.</summary>
    void Ready(float[] tensor, int rows);

    /// <summary>Does a little work while the transform waits for decoded rows; false when there is none.</summary>
    bool WhileWaiting();
}
