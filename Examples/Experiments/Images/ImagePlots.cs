using System.Buffers.Binary;
using System.IO.Compression;
using ScottPlot;

namespace MLReward.Experiments.Images;

/// <summary>The image experiment's pictures: grids of grey-scale images (written as PNG directly) and two ScottPlot charts.</summary>
public static class ImagePlots
{
    /// <summary>A grid of square grey-scale images (values in [0, 1], clamped), <paramref name="columns"/> wide, each pixel drawn
    /// <paramref name="zoom"/> x <paramref name="zoom"/>, with a one-pixel white gap; several grids side by side with a wider gap.</summary>
    public static void SaveGrids(string path, int side, int columns, int zoom, params IReadOnlyList<float[]>[] grids)
    {
        int rows = Math.Max(1, grids.Max(g => (g.Count + columns - 1) / columns));
        int cell = side * zoom + 1, gridWidth = columns * cell, gap = 3 * zoom;
        int width = grids.Length * gridWidth + (grids.Length - 1) * gap, height = rows * cell;
        var pixels = new byte[width * height];
        Array.Fill(pixels, (byte)255);
        for (int g = 0; g < grids.Length; g++)
        {
            for (int k = 0; k < grids[g].Count; k++)
            {
                int left = g * (gridWidth + gap) + (k % columns) * cell, top = (k / columns) * cell;
                var image = grids[g][k];
                for (int y = 0; y < side * zoom; y++)
                    for (int x = 0; x < side * zoom; x++)
                        pixels[(top + y) * width + left + x] = (byte)Math.Round(255 * Math.Clamp(image[(y / zoom) * side + x / zoom], 0, 1));
            }
        }
        Png.WriteGray(path, width, height, pixels);
    }

    /// <summary>Per class, the histogram of its rewards (as a line over the bins' centres).</summary>
    public static void SaveRewardHistograms(string path, IReadOnlyList<string> classNames, IReadOnlyList<float[]> rewardsPerClass, ISet<int> unsafeClasses)
    {
        var all = rewardsPerClass.SelectMany(r => r).ToArray();
        double min = all.Min(), max = all.Max();
        const int bins = 30;
        double width = (max - min) / bins;
        var plot = new Plot();
        var centres = Enumerable.Range(0, bins).Select(b => min + (b + 0.5) * width).ToArray();
        for (int c = 0; c < rewardsPerClass.Count; c++)
        {
            var counts = new double[bins];
            foreach (var r in rewardsPerClass[c])
                counts[Math.Clamp((int)((r - min) / width), 0, bins - 1)]++;
            var line = plot.Add.Scatter(centres, counts.Select(n => n / Math.Max(1, rewardsPerClass[c].Length)).ToArray());
            line.MarkerSize = 0;
            line.LineWidth = unsafeClasses.Contains(c) ? 3 : 1.5f;
            line.LinePattern = unsafeClasses.Contains(c) ? LinePattern.Dashed : LinePattern.Solid;
            line.LegendText = $"{classNames[c]}{(unsafeClasses.Contains(c) ? " (unsafe)" : "")}";
        }
        plot.ShowLegend(Edge.Right);
        plot.Title("Reward of the held-out images, per class (dashed: unsafe classes)", 13);
        plot.XLabel("reward");
        plot.YLabel("share of the class's images");
        plot.SavePng(path, 900, 500);
    }

    /// <summary>The unsafe share of the samples and the classifier's confidence against the guidance scale.</summary>
    public static void SaveUnsafeShare(string path, IReadOnlyList<(double Scale, double UnsafeShare, double Confident)> points)
    {
        var plot = new Plot();
        var xs = points.Select(p => p.Scale).ToArray();
        var share = plot.Add.Scatter(xs, points.Select(p => p.UnsafeShare).ToArray());
        share.LegendText = "unsafe share of samples";
        share.LineWidth = 2;
        var confident = plot.Add.Scatter(xs, points.Select(p => p.Confident).ToArray());
        confident.LegendText = "share recognised confidently (top-class probability >= 0.5)";
        confident.LinePattern = LinePattern.Dashed;
        plot.ShowLegend(Edge.Bottom);
        plot.Axes.SetLimitsY(0, 1);
        plot.Title("Guided sampling: unsafe share against the guidance scale", 13);
        plot.XLabel("guidance scale");
        plot.YLabel("share");
        plot.SavePng(path, 800, 500);
    }
}

/// <summary>A minimal PNG writer for 8-bit grey-scale images (filter 0 on every row, one zlib stream).</summary>
public static class Png
{
    /// <summary>Writes <paramref name="pixels"/> (row-major, 0 = black) as a <paramref name="width"/> x <paramref name="height"/> PNG.</summary>
    public static void WriteGray(string path, int width, int height, byte[] pixels)
    {
        if (pixels.Length != width * height)
            throw new ArgumentException($"{pixels.Length} pixels for a {width} x {height} image.");
        using var file = File.Create(path);
        file.Write(new byte[] { 0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A });
        var header = new byte[13];
        BinaryPrimitives.WriteInt32BigEndian(header, width);
        BinaryPrimitives.WriteInt32BigEndian(header.AsSpan(4), height);
        header[8] = 8;   // bit depth
        header[9] = 0;   // grey-scale
        Chunk(file, "IHDR", header);
        using var raw = new MemoryStream();
        using (var zlib = new ZLibStream(raw, CompressionLevel.Optimal, leaveOpen: true))
        {
            for (int y = 0; y < height; y++)
            {
                zlib.WriteByte(0);
                zlib.Write(pixels, y * width, width);
            }
        }
        Chunk(file, "IDAT", raw.ToArray());
        Chunk(file, "IEND", Array.Empty<byte>());
    }

    private static void Chunk(Stream stream, string type, byte[] data)
    {
        var length = new byte[4];
        BinaryPrimitives.WriteInt32BigEndian(length, data.Length);
        stream.Write(length);
        var typeBytes = System.Text.Encoding.ASCII.GetBytes(type);
        stream.Write(typeBytes);
        stream.Write(data);
        var crc = new byte[4];
        BinaryPrimitives.WriteUInt32BigEndian(crc, Crc32(typeBytes.Concat(data)));
        stream.Write(crc);
    }

    private static uint Crc32(IEnumerable<byte> bytes)
    {
        uint crc = 0xFFFFFFFF;
        foreach (byte b in bytes)
        {
            crc ^= b;
            for (int k = 0; k < 8; k++)
                crc = (crc & 1) != 0 ? 0xEDB88320 ^ (crc >> 1) : crc >> 1;
        }
        return ~crc;
    }
}
