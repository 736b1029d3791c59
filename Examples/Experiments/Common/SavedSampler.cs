using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.RewardExtraction;

namespace MLReward.Experiments;

/// <summary>
/// Draws samples from a saved guided sampler (a zip holding a <see cref="GuidedSamplingTransformer"/>, alone or at the end of a
/// chain), as <c>mlreward sample</c> does: one row per sample with seeds first, first + 1, ..., optionally at another guidance
/// scale and with known entries inpainted.
/// </summary>
public static class SavedSampler
{
    /// <summary>A known value: sample entry (step, feature) is fixed to <paramref name="Value"/> (raw units).</summary>
    public sealed record Known(int Step, int Feature, float Value);

    /// <summary>The sampler in <paramref name="modelPath"/>; dispose it after use.</summary>
    public static GuidedSamplingTransformer Load(MLContext ml, string modelPath)
    {
        var model = SafeModelSave.Load(ml, modelPath, out _);   // names the file when it is not a readable model
        var sampler = model as GuidedSamplingTransformer ?? (model as IEnumerable<ITransformer>)?.OfType<GuidedSamplingTransformer>().LastOrDefault();
        if (sampler is null)
        {
            (model as IDisposable)?.Dispose();
            throw new InvalidDataException($"'{modelPath}' holds no guided sampler (found {model.GetType().Name}).");
        }
        return sampler;
    }

    /// <summary><paramref name="count"/> samples (raw values, row-major) with seeds <paramref name="firstSeed"/>, +1, ...; at
    /// <paramref name="scale"/> when given, else the saved one; with <paramref name="samplingSteps"/> reverse steps when given (0 =
    /// ancestral over all T, S = DDIM over S), else the saved number.</summary>
    public static float[][] Sample(MLContext ml, GuidedSamplingTransformer sampler, int count, long firstSeed = 0, double? scale = null,
        IReadOnlyList<Known>? condition = null, int? samplingSteps = null)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(count, 1);
        var shape = sampler.Shape;
        int length = shape.Length;
        var values = new float[length];
        var mask = new float[length];
        foreach (var known in condition ?? [])
        {
            if (shape.Kind != SampleShapeKind.Trajectory || known.Step < 0 || known.Step >= shape.Horizon || known.Feature < 0 || known.Feature >= shape.TransitionDimension)
                throw new ArgumentException($"Condition {known.Step}:{known.Feature} lies outside the sampler's {shape} (steps 0..{shape.Horizon - 1}, features 0..{shape.TransitionDimension - 1}).");
            values[known.Step * shape.TransitionDimension + known.Feature] = known.Value;
            mask[known.Step * shape.TransitionDimension + known.Feature] = 1;
        }
        if (condition is { Count: > 0 } && sampler.ConditionColumnName is null)
            throw new InvalidOperationException("This sampler was saved without condition columns, so it cannot be conditioned.");
        if (sampler.SeedColumnName is null)
            throw new InvalidOperationException("This sampler was saved without a seed column; save it with SeedColumnName set.");
        var rows = Enumerable.Range(0, count).Select(i => new SamplerInput { Seed = firstSeed + i, Condition = values, ConditionMask = mask }).ToList();
        IDataView input = SamplerInput.View(ml, rows);
        input = Rename(ml, input, nameof(SamplerInput.Seed), sampler.SeedColumnName);
        if (sampler.ConditionColumnName is not null)
        {
            input = Rename(ml, input, nameof(SamplerInput.Condition), sampler.ConditionColumnName);
            input = Rename(ml, input, nameof(SamplerInput.ConditionMask), sampler.ConditionMaskColumnName!);
        }
        using var scaled = scale is { } s ? sampler.WithGuidanceScale(s) : null;
        using var stepped = samplingSteps is { } steps ? (scaled ?? sampler).WithSamplingSteps(steps) : null;
        var used = stepped ?? scaled ?? sampler;
        return used.Transform(input).GetColumn<float[]>(used.OutputColumnName).ToArray();
    }

    private static IDataView Rename(MLContext ml, IDataView data, string from, string to) =>
        from == to ? data : ml.Transforms.CopyColumns(to, from).Fit(data).Transform(data);
}
