using System.Security.Cryptography;
using System.Text.RegularExpressions;

namespace ResNet.Runtime.Hub;

/// <summary>
/// Finds the weights the way torch.hub does and, if allowed, downloads them into its cache:
/// <c>$TORCH_HOME/hub/checkpoints/&lt;file name of the URL&gt;</c> (TORCH_HOME defaults to $XDG_CACHE_HOME/torch,
/// else ~/.cache/torch), so a machine where PyTorch already downloaded resnet18-f37072fd.pth just works.
/// A download goes to a temporary file in that directory and is renamed into place only once its SHA-256
/// starts with the hash in the file name (torch.hub's check_hash); any failure deletes it.
/// </summary>
public static partial class TorchHub
{
    /// <summary>torchvision's ImageNet weights for resnet18 (IMAGENET1K_V1).</summary>
    public const string DefaultUrl = "https://download.pytorch.org/models/resnet18-f37072fd.pth";

    /// <summary>
    /// The cache directory torch.hub uses for checkpoints. The home directory is $HOME whether or not it exists,
    /// as Python's expanduser gives it (a verified lookup would return "" and make the path relative to the cwd).
    /// </summary>
    public static string CheckpointDirectory()
    {
        string? torchHome = Environment.GetEnvironmentVariable("TORCH_HOME");
        if (string.IsNullOrEmpty(torchHome))
        {
            string? xdg = Environment.GetEnvironmentVariable("XDG_CACHE_HOME");
            string cache = string.IsNullOrEmpty(xdg) ? Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile, Environment.SpecialFolderOption.DoNotVerify), ".cache") : xdg;
            torchHome = Path.Combine(cache, "torch");
        }
        return Path.Combine(torchHome, "hub", "checkpoints");
    }

    /// <summary>The file name a URL's checkpoint is cached under (its last path segment).</summary>
    public static string FileName(string url)
    {
        var uri = new Uri(url);
        string name = Path.GetFileName(uri.AbsolutePath);
        return name.Length > 0 ? name : throw new ArgumentException($"URL {url} does not end in a file name", nameof(url));
    }

    /// <summary>The hash prefix torch.hub checks: what follows the last '-' of the file name, before the extension.</summary>
    public static string? HashPrefix(string fileName)
    {
        var m = HashPattern().Match(fileName);
        return m.Success ? m.Groups[1].Value : null;
    }

    /// <summary>
    /// Downloads <paramref name="url"/> to <paramref name="destination"/> through a temporary file, verifying the
    /// SHA-256 prefix when <paramref name="hashPrefix"/> is given. Reports (bytes so far, total or -1).
    /// </summary>
    public static async Task DownloadAsync(string url, string destination, string? hashPrefix, Action<long, long>? progress = null,
        HttpClient? client = null, CancellationToken cancellationToken = default)
    {
        string dir = Path.GetDirectoryName(Path.GetFullPath(destination))!;
        try
        {
            Directory.CreateDirectory(dir);
        }
        catch (Exception e) when (Unwritable(e) is { } reason)
        {
            throw new WeightsException($"{dir}: cannot create this directory to download the weights into ({reason})");
        }
        // ".name.PID-GUID.partial": a download killed part way (Ctrl-C) is removed by the next one, once its process is gone.
        string name = Path.GetFileName(destination);
        string ours = $".{name}.";
        AbandonedFiles.Remove(dir, $"{ours}*.partial", // the pattern's * and ? in a URL's file name would match others' names
            f => f.StartsWith(ours, StringComparison.Ordinal) ? f[ours.Length..].Split('-')[0] : null, DateTime.UtcNow, TimeSpan.FromDays(1));
        string temp = Path.Combine(dir, $".{name}.{Environment.ProcessId}-{Guid.NewGuid():N}.partial");
        FileStream output;
        try
        {
            // Before the request: a directory that cannot take the file is said before 46 MB arrive, not after.
            output = new FileStream(temp, FileMode.CreateNew, FileAccess.Write, FileShare.None);
        }
        catch (Exception e) when (Unwritable(e) is { } reason)
        {
            throw new WeightsException($"{dir}: cannot save the download there ({reason})");
        }
        var owned = client == null ? new HttpClient { Timeout = TimeSpan.FromMinutes(30) } : null;
        try
        {
            long total, received = 0;
            using var sha = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
            await using (output)
            {
                using var response = await (client ?? owned!).GetAsync(url, HttpCompletionOption.ResponseHeadersRead, cancellationToken);
                if (!response.IsSuccessStatusCode)
                    throw new WeightsException($"{url}: download failed: HTTP {(int)response.StatusCode} {response.ReasonPhrase}");
                total = response.Content.Headers.ContentLength ?? -1;
                await using var input = await response.Content.ReadAsStreamAsync(cancellationToken);
                var buffer = new byte[1 << 16];
                int n;
                while ((n = await input.ReadAsync(buffer, cancellationToken)) > 0)
                {
                    await output.WriteAsync(buffer.AsMemory(0, n), cancellationToken);
                    sha.AppendData(buffer, 0, n);
                    received += n;
                    progress?.Invoke(received, total);
                }
            }
            if (total >= 0 && received != total)
                throw new WeightsException($"{url}: download ended after {received} of {total} bytes");
            string digest = Convert.ToHexStringLower(sha.GetHashAndReset());
            if (hashPrefix != null && !digest.StartsWith(hashPrefix, StringComparison.Ordinal))
                throw new WeightsException($"{url}: invalid hash value (expected \"{hashPrefix}\", got \"{digest}\"); nothing was saved");
            File.Move(temp, destination, overwrite: true);
        }
        catch (HttpRequestException e)
        {
            throw new WeightsException($"{url}: download failed: {e.Message}");
        }
        catch (UnauthorizedAccessException)
        {
            throw new WeightsException($"{destination}: cannot save the download there (permission denied)");
        }
        catch (IOException e) when (e is not FileNotFoundException)
        {
            throw new WeightsException($"{url}: download failed: {e.Message}");
        }
        catch (TaskCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            throw new WeightsException($"{url}: download timed out");
        }
        finally
        {
            owned?.Dispose();
            if (File.Exists(temp)) File.Delete(temp);
        }
    }

    /// <summary>Why a directory cannot be made, in a few words, or null when the exception is not the file system's.</summary>
    private static string? Unwritable(Exception e) => e switch
    {
        UnauthorizedAccessException => "permission denied",
        FileNotFoundException or DirectoryNotFoundException => "a part of its path is missing or not a directory",
        IOException io => io.Message.ReplaceLineEndings(" "),
        _ => null,
    };

    [GeneratedRegex(@"-([a-f0-9]*)\.")]
    private static partial Regex HashPattern();
}
