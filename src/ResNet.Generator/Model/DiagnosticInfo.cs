using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.Text;

namespace ResNet.Generator.Model
{
    /// <summary>
    /// A diagnostic as plain data. <see cref="Location"/> and <see cref="Diagnostic"/> are not value-equal,
    /// so the pipeline carries this and builds the real diagnostic only when reporting.
    /// </summary>
    internal sealed record DiagnosticInfo(string Id, string FilePath, TextSpan Span, LinePositionSpan Lines, EquatableArray<string> Args)
    {
        public Diagnostic ToDiagnostic() =>
            Diagnostic.Create(Diagnostics.ById(Id), Location.Create(FilePath, Span, Lines), Args.ToArray<object>());
    }

    internal static class EquatableArrayExtensions
    {
        public static T2[] ToArray<T2>(this EquatableArray<string> array)
        {
            var result = new T2[array.Count];
            for (int i = 0; i < array.Count; i++) result[i] = (T2)(object)array[i];
            return result;
        }
    }
}
