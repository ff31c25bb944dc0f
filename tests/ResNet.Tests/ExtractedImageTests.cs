using ResNet.Native;
using Xunit;

namespace ResNet.Tests;

/// <summary>The cached copy of the x86-64-v3 build that IsaGate.c executes on AVX2-only CPUs (only the published binary uses it).</summary>
[System.Runtime.Versioning.SupportedOSPlatform("linux")]
public sealed class ExtractedImageTests : IDisposable
{
    private readonly string _root = Directory.CreateTempSubdirectory("extract").FullName;
    private readonly byte[] _image = Enumerable.Range(0, 100_000).Select(i => (byte)(i * 7 + 3)).ToArray();

    public void Dispose() => Directory.Delete(_root, recursive: true);

    private string Dir => Path.Combine(_root, "resnet18");

    private string ImagePath(string id = "0123456789abcdef") => Path.Combine(Dir, $"{ExtractedImage.Prefix}{id}");

    /// <summary>Opens (extracting if needed) and returns what the descriptor reads, or null when the cache was refused.</summary>
    private byte[]? OpenAndRead(string id = "0123456789abcdef")
    {
        int fd = ExtractedImage.Open(Dir, id, _image);
        if (fd < 0) return null;
        using var handle = new Microsoft.Win32.SafeHandles.SafeFileHandle(fd, ownsHandle: true);
        var read = new byte[RandomAccess.GetLength(handle)];
        RandomAccess.Read(handle, read, 0);
        return read;
    }

    [Fact]
    public void ExtractsOnceOwnerReadExecuteOnlyThenReuses()
    {
        Assert.Equal(_image, OpenAndRead());
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserExecute, File.GetUnixFileMode(ImagePath()));
        Assert.Single(Directory.GetFiles(Dir)); // no temporary left
        var written = File.GetLastWriteTimeUtc(ImagePath());
        File.SetLastWriteTimeUtc(ImagePath(), written.AddHours(-1));
        Assert.Equal(_image, OpenAndRead());
        Assert.Equal(written.AddHours(-1), File.GetLastWriteTimeUtc(ImagePath())); // reused, not rewritten
    }

    [Fact]
    public void ATruncatedOrForeignFileIsReplacedAndASymlinkNotFollowed()
    {
        Directory.CreateDirectory(Dir);
        File.WriteAllBytes(ImagePath(), _image[..1000]);
        Assert.Equal(_image, OpenAndRead());

        string elsewhere = Path.Combine(_root, "elsewhere");
        File.WriteAllBytes(elsewhere, new byte[_image.Length]);
        File.Delete(ImagePath());
        File.CreateSymbolicLink(ImagePath(), elsewhere);
        Assert.Equal(_image, OpenAndRead());
        Assert.Equal(new byte[_image.Length], File.ReadAllBytes(elsewhere));
        Assert.Null(new FileInfo(ImagePath()).LinkTarget);
    }

    [Fact]
    public void ADirectoryOthersCanWriteIsNotUsed()
    {
        Directory.CreateDirectory(Dir);
        File.SetUnixFileMode(Dir, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute
            | UnixFileMode.GroupRead | UnixFileMode.GroupWrite | UnixFileMode.GroupExecute);
        Assert.Null(OpenAndRead());
        Assert.Empty(Directory.GetFiles(Dir));
    }

    [Fact]
    public void AFileOthersCanWriteIsReplaced()
    {
        Directory.CreateDirectory(Dir);
        File.WriteAllBytes(ImagePath(), _image);
        File.SetUnixFileMode(ImagePath(), UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.OtherWrite);
        Assert.Equal(_image, OpenAndRead());
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserExecute, File.GetUnixFileMode(ImagePath()));
    }

    [Fact]
    public void AnUpgradeRemovesImagesUnusedForAWeekOnly()
    {
        Directory.CreateDirectory(Dir);
        string stale = ImagePath("1111111111111111"), recent = ImagePath("2222222222222222");
        string earlier = Path.Combine(Dir, "resnet18-avx512-3333333333333333"); // what earlier builds kept there
        string weights = Path.Combine(Dir, "ResNet18-avx2-winograd-0-0.packed");
        foreach (var f in new[] { stale, recent, earlier, weights }) File.WriteAllBytes(f, [1]);
        foreach (var f in new[] { stale, earlier, weights }) File.SetLastAccessTimeUtc(f, DateTime.UtcNow.AddDays(-8));
        Assert.Equal(_image, OpenAndRead());
        Assert.False(File.Exists(stale));
        Assert.False(File.Exists(earlier));
        Assert.True(File.Exists(recent)); // another installed version, used in turn: not extracted again and again
        Assert.True(File.Exists(weights));
    }

    [Fact]
    public void AKilledExtractionsTemporaryFileGoesAtTheNextExtraction()
    {
        Directory.CreateDirectory(Dir);
        string gone = Path.Combine(Dir, $".{ExtractedImage.Prefix}1111111111111111.2147483647.tmp"); // no such process
        string live = Path.Combine(Dir, $".{ExtractedImage.Prefix}2222222222222222.{Environment.ProcessId}.tmp"); // being written
        foreach (var f in new[] { gone, live }) File.WriteAllBytes(f, [1]);
        Assert.Equal(_image, OpenAndRead());
        Assert.False(File.Exists(gone));
        Assert.True(File.Exists(live));
    }

    [Fact]
    public void AnUpgradeKeepsOnlyTheMostRecentlyRunOtherVersions()
    {
        // Rebuilds pile up images all run within the week: the most recently run few stay, the rest go.
        Directory.CreateDirectory(Dir);
        var others = Enumerable.Range(1, ExtractedImage.KeptVersions + 2).Select(i => ImagePath($"{i:x16}")).ToList();
        for (int i = 0; i < others.Count; i++)
        {
            File.WriteAllBytes(others[i], [1]);
            File.SetLastAccessTimeUtc(others[i], DateTime.UtcNow.AddHours(-i)); // others[0] ran last
        }
        Assert.Equal(_image, OpenAndRead());
        Assert.True(File.Exists(ImagePath()));
        Assert.All(others.Take(ExtractedImage.KeptVersions), f => Assert.True(File.Exists(f), f));
        Assert.All(others.Skip(ExtractedImage.KeptVersions), f => Assert.False(File.Exists(f), f));
    }

    [Fact]
    public void TheIdIsSixteenHexDigitsOfTheHash()
    {
        Assert.Equal("0123456789abcdef", ExtractedImage.Id("0123456789ABCDEF"));
        Assert.Null(ExtractedImage.Id("0123456789abcdef0")); // a name IsaGate.c would not open
        Assert.Null(ExtractedImage.Id("../../x/abcdefgh"));
        Assert.Null(ExtractedImage.Id("not a hash"));
        Assert.Null(ExtractedImage.Id(null));
    }
}
