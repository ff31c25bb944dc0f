using System.Net;
using System.Security.Cryptography;
using ResNet.Runtime;
using ResNet.Runtime.Hub;
using Xunit;

namespace ResNet.Tests;

/// <summary>Downloads like torch.hub: against a server on 127.0.0.1, a good file lands; nothing bad ever stays in the cache.</summary>
public sealed class HubTests : IDisposable
{
    private readonly string _cache = Directory.CreateTempSubdirectory("hub").FullName;
    private readonly byte[] _weights = File.ReadAllBytes(Path.Combine(Fixtures.Dir("tiny"), "weights.pth"));

    public void Dispose() => Directory.Delete(_cache, recursive: true);

    [Fact]
    public void FileNameAndHashPrefixFollowTorchHub()
    {
        Assert.Equal("resnet18-f37072fd.pth", TorchHub.FileName(TorchHub.DefaultUrl));
        Assert.Equal("f37072fd", TorchHub.HashPrefix("resnet18-f37072fd.pth"));
        Assert.Null(TorchHub.HashPrefix("weights.pth"));
    }

    [Fact]
    public async Task GoodDownloadIsRenamedIntoPlace()
    {
        string prefix = Convert.ToHexStringLower(SHA256.HashData(_weights))[..8];
        using var server = new LoopbackServer(ctx => Serve(ctx, _weights));
        string dest = Path.Combine(_cache, $"tiny-{prefix}.pth");
        await TorchHub.DownloadAsync(server.Url($"tiny-{prefix}.pth"), dest, prefix);
        Assert.Equal(_weights, File.ReadAllBytes(dest));
        Assert.Single(Directory.GetFiles(_cache));
        TinyResNet.Load(dest).Dispose();
    }

    [Fact]
    public async Task AKilledDownloadsPartialFileGoesAtTheNextDownload()
    {
        // Ctrl-C during a download left ".name.GUID.partial", up to 46 MB, for ever.
        string prefix = Convert.ToHexStringLower(SHA256.HashData(_weights))[..8];
        string name = $"tiny-{prefix}.pth";
        string gone = Path.Combine(_cache, $".{name}.2147483647-0123.partial"); // no such process
        string live = Path.Combine(_cache, $".{name}.{Environment.ProcessId}-4567.partial"); // a download under way
        string other = Path.Combine(_cache, ".other.pth.2147483647-89ab.partial"); // another file's: its own download's to judge
        foreach (var f in new[] { gone, live, other }) File.WriteAllText(f, "part");
        using var server = new LoopbackServer(ctx => Serve(ctx, _weights));
        await TorchHub.DownloadAsync(server.Url(name), Path.Combine(_cache, name), prefix);
        Assert.False(File.Exists(gone));
        Assert.True(File.Exists(live));
        Assert.True(File.Exists(other));
        Assert.Equal(_weights, File.ReadAllBytes(Path.Combine(_cache, name)));
    }

    [Fact]
    public async Task WrongHashLeavesNothing()
    {
        using var server = new LoopbackServer(ctx => Serve(ctx, _weights));
        var e = await Assert.ThrowsAsync<WeightsException>(() =>
            TorchHub.DownloadAsync(server.Url("resnet18-f37072fd.pth"), Path.Combine(_cache, "resnet18-f37072fd.pth"), "f37072fd"));
        Assert.Contains("invalid hash value (expected \"f37072fd\"", e.Message);
        Assert.Empty(Directory.GetFiles(_cache));
    }

    [Fact]
    public async Task ACacheDirectoryThatCannotBeMadeIsNamed()
    {
        // A TORCH_HOME under a file: it was "UnauthorizedAccessException: …" or "DirectoryNotFoundException: …" whole.
        string file = Path.Combine(_cache, "file");
        File.WriteAllText(file, "");
        using var server = new LoopbackServer(ctx => Serve(ctx, _weights));
        var e = await Assert.ThrowsAsync<WeightsException>(() =>
            TorchHub.DownloadAsync(server.Url("resnet18-f37072fd.pth"), Path.Combine(file, "hub", "checkpoints", "resnet18-f37072fd.pth"), "f37072fd"));
        Assert.Equal($"{file}/hub/checkpoints: cannot create this directory to download the weights into (a part of its path is missing or not a directory)", e.Message);
    }

    [Fact]
    public async Task ADirectoryThatTakesNoFileIsSaidBeforeDownloading()
    {
        // /proc/self exists and takes no new file, even from root (which CI is: a read-only directory would not do).
        bool asked = false;
        using var server = new LoopbackServer(ctx => { asked = true; Serve(ctx, _weights); });
        var e = await Assert.ThrowsAsync<WeightsException>(() =>
            TorchHub.DownloadAsync(server.Url("resnet18-f37072fd.pth"), "/proc/self/resnet18-f37072fd.pth", "f37072fd"));
        Assert.StartsWith("/proc/self: cannot save the download there (", e.Message);
        Assert.False(asked);
    }

    [Fact]
    public async Task NotFoundLeavesNothing()
    {
        using var server = new LoopbackServer(ctx => { ctx.Response.StatusCode = 404; ctx.Response.Close(); });
        var e = await Assert.ThrowsAsync<WeightsException>(() =>
            TorchHub.DownloadAsync(server.Url("resnet18-f37072fd.pth"), Path.Combine(_cache, "resnet18-f37072fd.pth"), "f37072fd"));
        Assert.Contains("HTTP 404", e.Message);
        Assert.Empty(Directory.GetFiles(_cache));
    }

    [Fact]
    public async Task DroppedConnectionLeavesNothing()
    {
        using var server = new LoopbackServer(ctx =>
        {
            // Promise the whole file, send a third, then cut the connection.
            ctx.Response.ContentLength64 = _weights.Length;
            ctx.Response.OutputStream.Write(_weights, 0, _weights.Length / 3);
            ctx.Response.OutputStream.Flush();
            ctx.Response.Abort();
        });
        var e = await Assert.ThrowsAsync<WeightsException>(() =>
            TorchHub.DownloadAsync(server.Url("w-00000000.pth"), Path.Combine(_cache, "w-00000000.pth"), "00000000"));
        Assert.Contains("download", e.Message);
        Assert.Empty(Directory.GetFiles(_cache));
    }

    private static void Serve(HttpListenerContext ctx, byte[] body)
    {
        ctx.Response.ContentLength64 = body.Length;
        ctx.Response.OutputStream.Write(body);
        ctx.Response.Close();
    }
}

/// <summary>An HTTP server on 127.0.0.1 with a free port, answering every request with <paramref name="handler"/>.</summary>
internal sealed class LoopbackServer : IDisposable
{
    private readonly HttpListener _listener = new();
    private readonly Task _loop;

    public LoopbackServer(Action<HttpListenerContext> handler)
    {
        for (int attempt = 0; ; attempt++)
        {
            Port = Random.Shared.Next(20000, 60000);
            _listener.Prefixes.Clear();
            _listener.Prefixes.Add($"http://127.0.0.1:{Port}/");
            try
            {
                _listener.Start();
                break;
            }
            catch (HttpListenerException) when (attempt < 20) { }
        }
        _loop = Task.Run(async () =>
        {
            while (_listener.IsListening)
            {
                HttpListenerContext ctx;
                try { ctx = await _listener.GetContextAsync(); }
                catch (Exception) { return; }
                try { handler(ctx); } catch (Exception) { }
            }
        });
    }

    public int Port { get; private set; }

    public string Url(string file) => $"http://127.0.0.1:{Port}/{file}";

    public void Dispose()
    {
        _listener.Stop();
        _listener.Close();
    }
}
