using System.Diagnostics;
using System.Globalization;
using System.Text.Json;

namespace ResNet.Bench;

/// <summary>
/// PyTorch in `compare`, eager and frozen: tools/bench_torch.py kept running beside this process (importing torch
/// takes seconds, which must not land in a block), asked for one block of passes at a time.
/// </summary>
internal sealed class TorchProcess : IDisposable
{
    private readonly Process _process;

    public string Version { get; }

    /// <summary>The frozen model's largest |Δlogit| from the eager one on one input: it computes the same network.</summary>
    public double FrozenDelta { get; }

    private TorchProcess(Process process, string version, double frozenDelta)
    {
        _process = process;
        Version = version;
        FrozenDelta = frozenDelta;
    }

    /// <summary>Starts the script on the weights; null, with the reason, when this Python cannot run it.</summary>
    public static TorchProcess? TryStart(string python, string weights, out string? reason)
    {
        reason = null;
        string? script = FindScript();
        if (script == null)
        {
            reason = "tools/bench_torch.py not found above the current directory";
            return null;
        }
        var psi = new ProcessStartInfo(python)
        {
            RedirectStandardInput = true, RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false,
        };
        psi.ArgumentList.Add(script);
        psi.ArgumentList.Add("--weights");
        psi.ArgumentList.Add(weights);
        Process process;
        try
        {
            process = Process.Start(psi)!;
        }
        catch (System.ComponentModel.Win32Exception e)
        {
            reason = $"{python}: {e.Message}";
            return null;
        }
        // Drained as it comes, so a chatty warning cannot fill the pipe and stall the script.
        var stderr = new System.Text.StringBuilder();
        process.ErrorDataReceived += (_, e) => { if (e.Data != null) lock (stderr) stderr.AppendLine(e.Data); };
        process.BeginErrorReadLine();
        string? first = process.StandardOutput.ReadLine();
        if (first == null)
        {
            process.WaitForExit();
            string last;
            lock (stderr) last = stderr.ToString().Trim().Split('\n')[^1];
            reason = $"{python} {Path.GetFileName(script)} exited with {process.ExitCode}: {last}";
            process.Dispose();
            return null;
        }
        using var ready = JsonDocument.Parse(first);
        return new TorchProcess(process, ready.RootElement.GetProperty("torch").GetString() ?? "?",
            ready.RootElement.GetProperty("frozen_max_abs_delta").GetDouble());
    }

    /// <summary>One block of <paramref name="mode"/> (eager or frozen): an untimed pass, then <paramref name="passes"/> timed ones, in ms each.</summary>
    public IReadOnlyList<double> Block(string mode, int threads, int batch, int passes)
    {
        _process.StandardInput.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{mode} {threads} {batch} {passes}"));
        _process.StandardInput.Flush();
        string line = _process.StandardOutput.ReadLine()
            ?? throw new InvalidOperationException($"bench_torch.py ended (exit code {(_process.WaitForExit(5000) ? _process.ExitCode : -1)})");
        using var doc = JsonDocument.Parse(line);
        return doc.RootElement.GetProperty("ms").EnumerateArray().Select(e => e.GetDouble()).ToArray();
    }

    private static string? FindScript()
    {
        foreach (var start in new[] { Environment.CurrentDirectory, AppContext.BaseDirectory })
            for (var d = new DirectoryInfo(start); d != null; d = d.Parent)
            {
                string candidate = Path.Combine(d.FullName, "tools", "bench_torch.py");
                if (File.Exists(candidate)) return candidate;
            }
        return null;
    }

    public void Dispose()
    {
        try
        {
            _process.StandardInput.Close(); // the script's loop ends at end of input
            if (!_process.WaitForExit(5000)) _process.Kill();
        }
        finally
        {
            _process.Dispose();
        }
    }
}
