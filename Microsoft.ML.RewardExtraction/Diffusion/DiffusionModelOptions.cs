namespace Microsoft.ML.RewardExtraction;

/// <summary>Everything needed to build an untrained <see cref="DiffusionModel"/> (see <see cref="DiffusionModel.Create"/>).</summary>
public sealed class DiffusionModelOptions
{
    /// <summary>The shape of one sample. Required.</summary>
    public SampleShape? Shape { get; set; }

    /// <summary>T, the number of diffusion steps (Diffuser: 20 for locomotion, 64 to 256 for Maze2D). Default 20.</summary>
    public int DiffusionSteps { get; set; } = 20;

    /// <summary>The beta schedule. Default cosine (Diffuser's).</summary>
    public NoiseScheduleKind Schedule { get; set; } = NoiseScheduleKind.Cosine;

    /// <summary>What the denoiser predicts. Default the clean sample x0 (Diffuser's).</summary>
    public PredictionTarget Target { get; set; } = PredictionTarget.Start;

    /// <summary>Whether x0 estimates are clamped to [-1, 1]. Default true (data are normalised to that range).</summary>
    public bool ClipDenoised { get; set; } = true;

    /// <summary>The denoising network. Default: <see cref="DenoiserKind.Auto"/> (TemporalUNet dim 32, mults 1,2,4
    /// for trajectories; ImageUNet dim 32, mults 1,2 for images).</summary>
    public DenoiserOptions Denoiser { get; set; } = new();

    /// <summary>Seeds the network's initial weights. Default 0.</summary>
    public int Seed { get; set; }
}
