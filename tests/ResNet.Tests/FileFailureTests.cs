using ResNet.Native;
using ResNet.Runtime;
using ResNet.Runtime.IO;
using ResNet.Runtime.Images;
using ResNet.Runtime.Weights;
using Xunit;

namespace ResNet.Tests;

/// <summary>
/// Every file the program reads (an image, an input tensor, the weights, the labels) names the same reasons in the
/// same words when the file system is what fails: the shared FileFailures compiled into the runtime and the command.
/// </summary>
public sealed class FileFailureTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("file-failures").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    public static TheoryData<string> Readers() => ["image", "npy", "weights", "labels"];

    private static string Read(string reader, string path)
    {
        Action read = reader switch
        {
            "image" => () => ImageDecoder.Load(path),
            "npy" => () => Npy.Read(path),
            "weights" => () => StateDict.Load(path),
            _ => () => LabelsFile.Load(path, 3),
        };
        return Assert.ThrowsAny<ResNetException>(read).Message;
    }

    [Theory]
    [MemberData(nameof(Readers))]
    public void MissingFileDirectoryAndSymlinkLoopAreNamed(string reader)
    {
        Assert.Equal($"{_dir}/none: no such file", Read(reader, $"{_dir}/none"));
        Assert.Equal($"{_dir}/none/x: no such file", Read(reader, $"{_dir}/none/x"));
        Assert.Equal($"{_dir}: is a directory", Read(reader, _dir));
        // A link to itself exists as a link, so only opening it fails: the system's words, on one line.
        string loop = Path.Combine(_dir, "loop");
        File.CreateSymbolicLink(loop, loop);
        string message = Read(reader, loop);
        Assert.StartsWith($"{loop}: cannot read (", message);
        Assert.Contains("symbolic links", message);
        Assert.DoesNotContain('\n', message);
    }

    [Theory]
    [InlineData("image", 1L << 30, "an image file")]
    [InlineData("npy", 1L << 30, "an input tensor")]
    [InlineData("labels", 16L << 20, "a labels file")]
    public void TooLargeIsRefusedBeforeReading(string reader, long limit, string what)
    {
        // Sparse: nothing is written, and a reader that read it whole first would take seconds, not fail at once.
        string path = Path.Combine(_dir, "large");
        using (var f = File.Create(path)) f.SetLength(limit + 1);
        Assert.Equal($"{path}: {limit + 1} bytes is too large for {what} (at most {limit})", Read(reader, path));
    }
}
