namespace Microsoft.ML.RewardExtraction;

public sealed partial class RewardExtractionCatalog
{
    /// <summary>
    /// Creates a <see cref="DiffusionModelTrainer"/>, which trains a denoising diffusion model on the samples of a
    /// float vector column.
    /// </summary>
    /// <param name="featureColumnName">The input column: <c>Vector&lt;Single, shape.Length&gt;</c>, raw values.</param>
    /// <param name="shape">The shape of one sample, e.g. <c>SampleShape.Trajectory(16, 6)</c>.</param>
    /// <param name="diffusionSteps">T, the number of diffusion steps.</param>
    /// <param name="trainingSteps">Optimiser steps.</param>
    /// <param name="batchSize">Samples per step.</param>
    /// <param name="seed">Seed of the initial weights and all training randomness.</param>
    /// <param name="outputColumnName">The column the transformer adds: the denoising error.</param>
    public DiffusionModelTrainer DiffusionModel(string featureColumnName, SampleShape shape, int diffusionSteps = 20,
        int trainingSteps = 1000, int batchSize = 32, int seed = 0, string outputColumnName = "DenoisingError")
        => DiffusionModel(new DiffusionModelTrainer.Options
        {
            FeatureColumnName = featureColumnName,
            Shape = shape,
            DiffusionSteps = diffusionSteps,
            TrainingSteps = trainingSteps,
            BatchSize = batchSize,
            Seed = seed,
            OutputColumnName = outputColumnName,
        });

    /// <summary>Creates a <see cref="DiffusionModelTrainer"/> with advanced options.</summary>
    /// <param name="options">Columns, shape, schedule, network, training and scoring settings.</param>
    public DiffusionModelTrainer DiffusionModel(DiffusionModelTrainer.Options options) => new(Environment, options);

    /// <summary>
    /// Creates a <see cref="RelativeRewardTrainer"/>, which extracts the relative reward of
    /// <paramref name="expertModel"/> with respect to <paramref name="baseModel"/>.
    /// </summary>
    /// <param name="baseModel">The diffusion model of ordinary behaviour.</param>
    /// <param name="expertModel">The diffusion model of expert behaviour (same shape, schedule and normaliser).</param>
    /// <param name="featureColumnName">The input column of training samples (raw values).</param>
    /// <param name="trainingSteps">Optimiser steps.</param>
    /// <param name="batchSize">Samples per step.</param>
    /// <param name="seed">Seed of the initial weights and all training randomness.</param>
    /// <param name="outputColumnName">The column the transformer adds: the reward.</param>
    public RelativeRewardTrainer RelativeReward(DiffusionModelTransformer baseModel, DiffusionModelTransformer expertModel,
        string featureColumnName, int trainingSteps = 1000, int batchSize = 64, int seed = 0, string outputColumnName = "Reward")
        => RelativeReward(baseModel, expertModel, new RelativeRewardTrainer.Options
        {
            FeatureColumnName = featureColumnName,
            TrainingSteps = trainingSteps,
            BatchSize = batchSize,
            Seed = seed,
            OutputColumnName = outputColumnName,
        });

    /// <summary>Creates a <see cref="RelativeRewardTrainer"/> with advanced options.</summary>
    /// <param name="baseModel">The diffusion model of ordinary behaviour.</param>
    /// <param name="expertModel">The diffusion model of expert behaviour.</param>
    /// <param name="options">Columns, network, objective, training and scoring settings.</param>
    public RelativeRewardTrainer RelativeReward(DiffusionModelTransformer baseModel, DiffusionModelTransformer expertModel,
        RelativeRewardTrainer.Options options) => new(Environment, baseModel, expertModel, options);

    /// <summary>
    /// Creates a <see cref="GuidedSamplingEstimator"/>: one sample of <paramref name="baseModel"/> per input row,
    /// steered toward higher <paramref name="reward"/>.
    /// </summary>
    /// <param name="baseModel">The diffusion model whose sampler is steered.</param>
    /// <param name="reward">The reward that steers it.</param>
    /// <param name="guidanceScale">Step size of the guidance (0 = unguided).</param>
    /// <param name="seed">Seed of the samples (mixed with each row's position).</param>
    /// <param name="outputColumnName">The column the transformer adds: the sample.</param>
    public GuidedSamplingEstimator GuidedSampling(DiffusionModelTransformer baseModel, RelativeRewardTransformer reward,
        double guidanceScale = 0.1, long seed = 0, string outputColumnName = "Sample")
        => GuidedSampling(baseModel, reward, new GuidedSamplingEstimator.Options { GuidanceScale = guidanceScale, Seed = seed, OutputColumnName = outputColumnName });

    /// <summary>Creates a <see cref="GuidedSamplingEstimator"/> with advanced options (inpainting, seeds, stop-gradient).</summary>
    /// <param name="baseModel">The diffusion model whose sampler is steered.</param>
    /// <param name="reward">The reward that steers it; null samples the base model unguided.</param>
    /// <param name="options">Columns and guidance settings.</param>
    public GuidedSamplingEstimator GuidedSampling(DiffusionModelTransformer baseModel, RelativeRewardTransformer? reward,
        GuidedSamplingEstimator.Options options) => new(Environment, baseModel, reward, options);
}
