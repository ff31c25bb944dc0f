// Compiled into both the generator (netstandard2.0) and the runtime, so the transforms the generator unrolls and
// the weight transform the runtime applies at load come from one construction: keep it to C# both can build.
using System;

namespace ResNet.Shared
{
    /// <summary>
    /// Winograd F(m, r) matrices by the Toom-Cook construction (Lavin and Gray; wincnn's formulation): with
    /// α = m + r − 1 interpolation points, α − 1 finite and one at infinity, y = Aᵀ·[(G·g) ⊙ (Bᵀ·d)] is the
    /// correlation y[i] = Σ_k g[k]·d[i + k] of an r-tap filter over α inputs into m outputs. Computed exactly
    /// in rationals, so every entry is the nearest float to the true coefficient. The points are the usual
    /// 0, ±1, ±1/2, 2, −2, …: small, and powers of two where they can be, so Aᵀ's entries (powers of the points)
    /// multiply exactly in floats.
    /// </summary>
    internal static class ToomCook
    {
        private static readonly Rational[] Points =
        {
            new Rational(0, 1), new Rational(1, 1), new Rational(-1, 1), new Rational(1, 2), new Rational(-1, 2),
            new Rational(2, 1), new Rational(-2, 1), new Rational(1, 4), new Rational(-1, 4),
        };

        /// <summary>The largest α the points allow.</summary>
        public const int MaxAlpha = 10;

        /// <summary>Aᵀ (m × α), G (α × r) and Bᵀ (α × α) of F(m, r), row-major.</summary>
        public static Matrices For(int m, int r)
        {
            int alpha = m + r - 1;
            if (m < 1 || r < 1 || alpha > MaxAlpha) throw new ArgumentOutOfRangeException(nameof(m), $"F({m},{r}) needs {alpha} points; at most {MaxAlpha}");
            int finite = alpha - 1;
            var at = new double[m * alpha];
            var g = new double[alpha * r];
            var bt = new double[alpha * alpha];
            for (int i = 0; i < m; i++)
            {
                for (int j = 0; j < finite; j++) at[i * alpha + j] = Points[j].Power(i).Value;
                at[i * alpha + finite] = i == m - 1 ? 1 : 0;
            }
            for (int j = 0; j < finite; j++)
            {
                var f = new Rational(1, 1);
                for (int l = 0; l < finite; l++)
                    if (l != j) f = f * (Points[j] - Points[l]);
                for (int k = 0; k < r; k++) g[j * r + k] = (Points[j].Power(k) / f).Value;
            }
            g[finite * r + r - 1] = 1;
            // Row j < α − 1 of Bᵀ: the coefficients of Π_{l≠j}(x − p_l); the last row: those of Π_l(x − p_l).
            for (int j = 0; j <= finite; j++)
            {
                var poly = new Rational[alpha];
                poly[0] = new Rational(1, 1);
                for (int i = 1; i < alpha; i++) poly[i] = new Rational(0, 1);
                int degree = 0;
                for (int l = 0; l < finite; l++)
                {
                    if (l == j) continue;
                    // poly ← poly · (x − p_l)
                    for (int i = degree + 1; i >= 0; i--)
                        poly[i] = (i > 0 ? poly[i - 1] : new Rational(0, 1)) - (i <= degree ? poly[i] * Points[l] : new Rational(0, 1));
                    degree++;
                }
                for (int i = 0; i < alpha; i++) bt[j * alpha + i] = poly[i].Value;
            }
            return new Matrices(m, r, alpha, at, g, bt);
        }

        internal sealed class Matrices
        {
            public Matrices(int m, int r, int alpha, double[] at, double[] g, double[] bt) => (M, R, Alpha, AT, G, BT) = (m, r, alpha, at, g, bt);

            public int M { get; }
            public int R { get; }
            public int Alpha { get; }
            /// <summary>Aᵀ, m × α.</summary>
            public double[] AT { get; }
            /// <summary>G, α × r.</summary>
            public double[] G { get; }
            /// <summary>Bᵀ, α × α.</summary>
            public double[] BT { get; }
        }

        private readonly struct Rational
        {
            public Rational(long numerator, long denominator)
            {
                if (denominator < 0) (numerator, denominator) = (-numerator, -denominator);
                long d = Gcd(Math.Abs(numerator), denominator);
                (Numerator, Denominator) = d == 0 ? (0, 1) : (numerator / d, denominator / d);
            }

            public long Numerator { get; }
            public long Denominator { get; }
            public double Value => (double)Numerator / Denominator;

            public Rational Power(int k)
            {
                var p = new Rational(1, 1);
                for (int i = 0; i < k; i++) p = p * this;
                return p;
            }

            public static Rational operator *(Rational a, Rational b) => new Rational(a.Numerator * b.Numerator, a.Denominator * b.Denominator);
            public static Rational operator /(Rational a, Rational b) => new Rational(a.Numerator * b.Denominator, a.Denominator * b.Numerator);
            public static Rational operator -(Rational a, Rational b) => new Rational(a.Numerator * b.Denominator - b.Numerator * a.Denominator, a.Denominator * b.Denominator);

            private static long Gcd(long a, long b)
            {
                while (b != 0) (a, b) = (b, a % b);
                return a;
            }
        }
    }
}
