using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace Microsoft.ML.RewardExtraction;

/// <summary>
/// A small denoiser for tiny problems and tests: the sample is flattened, concatenated with a step embedding
/// (sinusoidal(e) -> Linear(e, 4e) -> Mish -> Linear(4e, e)), passed through <c>layers</c> hidden Linear + Mish layers
/// of width <c>hidden</c> and a final Linear back to the sample size, then reshaped to the sample shape.
/// Works for any <see cref="SampleShape"/>.
/// </summary>
public sealed class MlpDenoiser : Denoiser, IDescribedDenoiser
{
    private readonly Sequential time_mlp;
    private readonly ModuleList<Linear> hidden;
    private readonly Linear output;
    private readonly long[] _sampleShape;

    /// <summary>Creates the MLP for samples of <paramref name="shape"/>.</summary>
    /// <param name="shape">The sample shape.</param>
    /// <param name="hiddenWidth">Width of the hidden layers.</param>
    /// <param name="hiddenLayers">Number of hidden layers (at least 1).</param>
    /// <param name="timeEmbeddingDimension">Width of the step embedding (even, at least 4).</param>
    public MlpDenoiser(SampleShape shape, int hiddenWidth = 256, int hiddenLayers = 3, int timeEmbeddingDimension = 32)
        : base(nameof(MlpDenoiser), shape ?? throw new ArgumentNullException(nameof(shape)))
    {
        if (hiddenWidth < 1)
            throw new ArgumentOutOfRangeException(nameof(hiddenWidth), hiddenWidth, "The hidden width must be positive.");
        if (hiddenLayers < 1)
            throw new ArgumentOutOfRangeException(nameof(hiddenLayers), hiddenLayers, "The MLP needs at least one hidden layer.");
        if (timeEmbeddingDimension < 4 || timeEmbeddingDimension % 2 != 0)
            throw new ArgumentOutOfRangeException(nameof(timeEmbeddingDimension), timeEmbeddingDimension, "The step-embedding width must be even and at least 4.");
        Options = new DenoiserOptions
        {
            Kind = DenoiserKind.Mlp,
            HiddenWidth = hiddenWidth,
            HiddenLayers = hiddenLayers,
            TimeEmbeddingDimension = timeEmbeddingDimension,
        };
        _sampleShape = shape.BatchShape(-1);
        int e = timeEmbeddingDimension;
        time_mlp = nn.Sequential(
            ("embedding", new SinusoidalPositionEmbedding(e)),
            ("linear1", nn.Linear(e, e * 4)),
            ("mish", nn.Mish()),
            ("linear2", nn.Linear(e * 4, e)));
        var layers = new Linear[hiddenLayers];
        for (int i = 0; i < hiddenLayers; i++)
            layers[i] = nn.Linear(i == 0 ? shape.Length + e : hiddenWidth, hiddenWidth);
        hidden = nn.ModuleList(layers);
        output = nn.Linear(hiddenWidth, shape.Length);
        RegisterComponents();
    }

    /// <summary>The hyperparameters this network was built with.</summary>
    public DenoiserOptions Options { get; }

    /// <summary>x_t [B, ...shape] and steps t [B] -> prediction [B, ...shape].</summary>
    public override Tensor forward(Tensor x, Tensor t)
    {
        bool inplace = !is_grad_enabled();
        using var scope = NewDisposeScope();
        var embedding = time_mlp.call(t);
        var h = cat(new[] { x.reshape(x.shape[0], Shape.Length), embedding }, 1);
        foreach (var layer in hidden)
            h = F.mish(layer.call(h), inplace);
        return output.call(h).view(_sampleShape).MoveToOuterDisposeScope();
    }
}
