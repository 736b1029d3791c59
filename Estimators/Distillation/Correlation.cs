namespace Microsoft.ML.RewardExtraction;

/// <summary>Pearson's and Spearman's correlation of two equally long series (ML.NET has neither for two score columns).</summary>
internal static class Correlation
{
    /// <summary>Pearson's correlation; NaN when either series is constant.</summary>
    public static double Pearson(IReadOnlyList<double> a, IReadOnlyList<double> b)
    {
        if (a.Count != b.Count)
            throw new ArgumentException($"The series have {a.Count} and {b.Count} values.", nameof(b));
        double ma = a.Average(), mb = b.Average();
        double covariance = 0, va = 0, vb = 0;
        for (int i = 0; i < a.Count; i++)
        {
            covariance += (a[i] - ma) * (b[i] - mb);
            va += (a[i] - ma) * (a[i] - ma);
            vb += (b[i] - mb) * (b[i] - mb);
        }
        return covariance / Math.Sqrt(va * vb);
    }

    /// <summary>Spearman's rank correlation: Pearson's on the ranks, tied values sharing their average rank.</summary>
    public static double Spearman(IReadOnlyList<float> a, IReadOnlyList<float> b) => Pearson(Ranks(a), Ranks(b));

    /// <summary>Pearson's correlation of single-precision series.</summary>
    public static double Pearson(IReadOnlyList<float> a, IReadOnlyList<float> b) => Pearson(a.Select(v => (double)v).ToArray(), b.Select(v => (double)v).ToArray());

    private static double[] Ranks(IReadOnlyList<float> values)
    {
        var order = Enumerable.Range(0, values.Count).OrderBy(i => values[i]).ToArray();
        var ranks = new double[values.Count];
        for (int first = 0; first < order.Length;)
        {
            int end = first + 1;
            while (end < order.Length && values[order[end]] == values[order[first]])
                end++;
            double averageRank = (first + 1 + end) / 2.0;   // ranks first+1..end
            for (int k = first; k < end; k++)
                ranks[order[k]] = averageRank;
            first = end;
        }
        return ranks;
    }
}
