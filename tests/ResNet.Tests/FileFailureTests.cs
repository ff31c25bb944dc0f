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
    [MemberData(nameof(Readers))]
    public void BrokenLinkAndUndecodableNameAreNamed(string reader)
    {
        string link = Path.Combine(_dir, "link");
        File.CreateSymbolicLink(link, "gone");
        Assert.Equal($"{link}: is a broken symbolic link to 'gone'", Read(reader, link));
        // A name that is not UTF-8 (Latin-1's "é" here) reaches .NET as U+FFFD, from a listing as from the command line.
        Shell("touch \"$1/caf$(printf '\\351')\"");
        try
        {
            string listed = Directory.EnumerateFiles(_dir, "caf*").Single();
            Assert.Equal($"{_dir}/caf\uFFFD", listed);
            Assert.Equal($"{listed}: no such file by this name: it is not valid UTF-8 (shown with U+FFFD), which this program cannot open by name; rename the file",
                Read(reader, listed));
        }
        finally
        {
            Shell("rm -- \"$1\"/caf*"); // nor can .NET remove it
        }
    }

    [Fact]
    public void APipesMagicLinkIsNotBroken()
    {
        // A shell's <(…) is /dev/fd/63, a link to "pipe:[…]": no such path, yet it opens; it was called broken.
        using var reader = new System.IO.Pipes.AnonymousPipeServerStream(System.IO.Pipes.PipeDirection.In);
        using (var writer = new System.IO.Pipes.AnonymousPipeClientStream(System.IO.Pipes.PipeDirection.Out, reader.ClientSafePipeHandle))
            writer.Write("a\nb\nc\n"u8); // closed: the three lines wait in the pipe, then its end
        string path = $"/proc/self/fd/{reader.SafePipeHandle.DangerousGetHandle()}";
        Assert.Equal(["a", "b", "c"], LabelsFile.Load(path, 3));
    }

    /// <summary>Runs <paramref name="script"/> with this test's directory as $1: .NET cannot name a file that is not UTF-8.</summary>
    private void Shell(string script)
    {
        using var shell = System.Diagnostics.Process.Start("/bin/sh", ["-c", script, "sh", _dir]);
        shell.WaitForExit();
        Assert.Equal(0, shell.ExitCode);
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
        // Behind a link the size is the file's (FileInfo gives a link's own).
        string link = Path.Combine(_dir, "link");
        File.CreateSymbolicLink(link, path);
        Assert.Equal($"{link}: {limit + 1} bytes is too large for {what} (at most {limit})", Read(reader, link));
    }
}
