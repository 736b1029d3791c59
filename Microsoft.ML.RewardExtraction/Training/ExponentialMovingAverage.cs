using TorchSharp;
using static TorchSharp.torch;

namespace Microsoft.ML.RewardExtraction;

/// <summary>
/// Diffuser's EMA rule: every <see cref="UpdateEvery"/> steps, before <see cref="StartStep"/> the shadow weights
/// are a plain copy of the online weights, from then on shadow = decay * shadow + (1 - decay) * online.
/// Sampling, scoring and guidance use the shadow module.
/// </summary>
public sealed class ExponentialMovingAverage
{
    private readonly TorchSharp.Modules.Parameter[] _online;
    private readonly TorchSharp.Modules.Parameter[] _shadow;
    private readonly Tensor[] _onlineBuffers;
    private readonly Tensor[] _shadowBuffers;

    /// <summary>Tracks <paramref name="online"/> in <paramref name="shadow"/> (same architecture).</summary>
    public ExponentialMovingAverage(nn.Module online, nn.Module shadow, double decay = 0.995, int updateEvery = 10, int startStep = 2000)
    {
        if (decay is < 0 or > 1)
            throw new ArgumentOutOfRangeException(nameof(decay), decay, "The EMA decay must lie in [0, 1].");
        if (updateEvery < 1)
            throw new ArgumentOutOfRangeException(nameof(updateEvery), updateEvery, "The EMA update interval must be at least 1.");
        _online = online.parameters().ToArray();
        _shadow = shadow.parameters().ToArray();
        _onlineBuffers = online.buffers().ToArray();
        _shadowBuffers = shadow.buffers().ToArray();
        if (_online.Length != _shadow.Length || _onlineBuffers.Length != _shadowBuffers.Length)
            throw new ArgumentException("The EMA shadow module must have the same architecture as the online module.");
        Decay = decay;
        UpdateEvery = updateEvery;
        StartStep = startStep;
    }

    /// <summary>The decay (0.995 in Diffuser).</summary>
    public double Decay { get; }
    /// <summary>Steps between updates (10 in Diffuser).</summary>
    public int UpdateEvery { get; }
    /// <summary>Before this step the shadow is a plain copy (2000 in Diffuser).</summary>
    public int StartStep { get; }

    /// <summary>Call after optimiser step number <paramref name="step"/> (0-based).</summary>
    public void Step(int step)
    {
        if (step % UpdateEvery != 0)
            return;
        if (step < StartStep)
            CopyFromOnline();
        else
            Blend();
    }

    /// <summary>Shadow = online.</summary>
    public void CopyFromOnline()
    {
        using var _ = no_grad();
        for (int i = 0; i < _online.Length; i++)
            _shadow[i].copy_(_online[i]);
        for (int i = 0; i < _onlineBuffers.Length; i++)
            _shadowBuffers[i].copy_(_onlineBuffers[i]);
    }

    private void Blend()
    {
        using var _ = no_grad();
        // Scalars held for the whole loop (see Scalars: implicit ones can be finalised during the native call).
        using var decay = Decay.ToScalar();
        using var rest = (1 - Decay).ToScalar();
        for (int i = 0; i < _online.Length; i++)
            _shadow[i].mul_(decay).add_(_online[i], rest);
        for (int i = 0; i < _onlineBuffers.Length; i++)
            _shadowBuffers[i].copy_(_onlineBuffers[i]);
    }
}
