using System.Text;
using ResNet.Runtime;
using ResNet.Runtime.IO;
using Xunit;

namespace ResNet.Tests;

public class NpyTests
{
    [Fact]
    public void RoundTrips()
    {
        string path = Path.Combine(Path.GetTempPath(), $"rt-{Guid.NewGuid():N}.npy");
        try
        {
            Npy.Write(path, [2, 3], [1, 2, 3, 4, 5, -6.5f]);
            var (shape, data) = Npy.Read(path);
            Assert.Equal(new[] { 2, 3 }, shape);
            Assert.Equal(new[] { 1, 2, 3, 4, 5, -6.5f }, data);
        }
        finally { File.Delete(path); }
    }

    [Fact]
    public void ReadsNumpyWrittenFile()
    {
        var (shape, data) = Npy.Read(Path.Combine(Fixtures.Dir("tiny"), "input0.npy"));
        Assert.Equal(new[] { 3, 37, 29 }, shape);
        Assert.Equal(3 * 37 * 29, data.Length);
    }

    public static TheoryData<string, byte[], string> BadFiles() => new()
    {
        { "empty", [], "not a .npy file (bad magic)" },
        { "magic", Encoding.ASCII.GetBytes("PK\x03\x04 this is a zip"), "not a .npy file (bad magic)" },
        { "dtype", Header("{'descr': '<f8', 'fortran_order': False, 'shape': (1,), }", 8), "dtype <f8; expected float32 ('<f4')" },
        { "bigendian", Header("{'descr': '>f4', 'fortran_order': False, 'shape': (1,), }", 4), "dtype >f4; expected float32 ('<f4')" },
        { "fortran", Header("{'descr': '<f4', 'fortran_order': True, 'shape': (2, 2), }", 16), "Fortran-order array; expected C order" },
        { "truncated", Header("{'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), }", 40), "shape (3, 4) needs 48 data bytes but the file has 40" },
        { "lies", Header("{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }", 400), "shape (2,) needs 8 data bytes but the file has 400" },
        { "newline", Header("{'descr': '<f4', 'fortran_order': False, 'shape': (2,\n3), }", 0), "shape (2,?3) needs 24 data bytes but the file has 0" },
        { "header", [0x93, .. "NUMPY"u8, 1, 0, 200, 0, .. "{'descr'"u8], "truncated .npy header" },
    };

    [Theory]
    [MemberData(nameof(BadFiles))]
    public void BadFileGivesExactError(string name, byte[] bytes, string reason)
    {
        var e = Assert.Throws<InputException>(() => Npy.Parse(bytes, $"{name}.npy"));
        Assert.Equal($"{name}.npy: {reason}", e.Message);
    }

    /// <summary>Read takes another path than Parse (the data read straight into the array): the same errors.</summary>
    [Theory]
    [MemberData(nameof(BadFiles))]
    public void BadFileOnDiskGivesTheSameError(string name, byte[] bytes, string reason)
    {
        string dir = Directory.CreateTempSubdirectory("npy").FullName;
        try
        {
            string path = Path.Combine(dir, $"{name}.npy");
            File.WriteAllBytes(path, bytes);
            var e = Assert.Throws<InputException>(() => Npy.Read(path));
            Assert.Equal($"{path}: {reason}", e.Message);
        }
        finally { Directory.Delete(dir, true); }
    }

    /// <summary>A version-2 header longer than the first page Read takes: read again up to its end.</summary>
    [Fact]
    public void ReadsAHeaderLongerThanAPage()
    {
        var header = "{'descr': '<f4', 'fortran_order': False, 'shape': (3,), }".PadRight(6000 - 12 - 1) + "\n";
        var values = new[] { 1.5f, -2, 3e-7f };
        byte[] bytes = [0x93, .. "NUMPY"u8, 2, 0, .. BitConverter.GetBytes(header.Length), .. Encoding.ASCII.GetBytes(header),
            .. values.SelectMany(BitConverter.GetBytes)];
        string path = Path.Combine(Path.GetTempPath(), $"long-{Guid.NewGuid():N}.npy");
        try
        {
            File.WriteAllBytes(path, bytes);
            Assert.Equal(values, Npy.Read(path).Data);
            Assert.Equal(values, Npy.Parse(bytes, "long.npy").Data);
        }
        finally { File.Delete(path); }
    }

    private static byte[] Header(string dict, int dataBytes)
    {
        var header = dict.PadRight(118) + "\n";
        return [0x93, .. "NUMPY"u8, 1, 0, (byte)header.Length, 0, .. Encoding.ASCII.GetBytes(header), .. new byte[dataBytes]];
    }
}
