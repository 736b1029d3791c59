using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace MLReward.LocomotionAgents;

/// <summary>
/// Soft actor-critic: a tanh-squashed Gaussian actor, twin critics with Polyak-averaged targets, and a learned
/// temperature. CPU, float32. Each <see cref="Update(TransitionBatch)"/> runs inside its own dispose scope.
/// </summary>
public sealed class SacAgent : IDisposable
{
    private const uint Magic = 0x4B43534D; // "MSCK"
    private const int FormatVersion = 1;

    private readonly Parameter logAlpha;
    private readonly Generator generator;
    private readonly optim.Optimizer actorOptimizer;
    private readonly optim.Optimizer criticOptimizer;
    private readonly optim.Optimizer alphaOptimizer;
    private readonly Parameter[] criticParameters;
    private readonly Parameter[] targetParameters;
    private readonly double targetEntropy;
    private bool disposed;

    /// <summary>Creates an agent with fresh networks seeded by <see cref="SacOptions.Seed"/>.</summary>
    public SacAgent(int observationSize, int actionSize, SacOptions? options = null)
    {
        Options = options ?? new SacOptions();
        Options.Validate();
        ArgumentOutOfRangeException.ThrowIfLessThan(observationSize, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(actionSize, 1);
        ObservationSize = observationSize;
        ActionSize = actionSize;

        torch.random.manual_seed(Options.Seed);
        Actor = new GaussianActor(observationSize, actionSize, Options.HiddenSizes);
        Critic = new TwinCritic(observationSize, actionSize, Options.HiddenSizes);
        TargetCritic = new TwinCritic(observationSize, actionSize, Options.HiddenSizes);
        TargetCritic.load_state_dict(Critic.state_dict());
        foreach (var p in TargetCritic.parameters())
            p.requires_grad = false;
        criticParameters = Critic.parameters().ToArray();
        targetParameters = TargetCritic.parameters().ToArray();

        logAlpha = new Parameter(tensor(new[] { (float)Math.Log(Options.InitialAlpha) }), requires_grad: true);
        targetEntropy = Options.TargetEntropy ?? -actionSize;
        generator = new Generator((ulong)(uint)Options.Seed + 0x5AC0UL);

        actorOptimizer = optim.Adam(Actor.parameters(), Options.LearningRate);
        criticOptimizer = optim.Adam(Critic.parameters(), Options.LearningRate);
        alphaOptimizer = optim.Adam(new[] { logAlpha }, Options.LearningRate);
    }

    /// <summary>Hyper-parameters.</summary>
    public SacOptions Options { get; }

    /// <summary>Observation length.</summary>
    public int ObservationSize { get; }

    /// <summary>Action length.</summary>
    public int ActionSize { get; }

    /// <summary>The policy network.</summary>
    public GaussianActor Actor { get; }

    /// <summary>The twin critics.</summary>
    public TwinCritic Critic { get; }

    /// <summary>The Polyak-averaged copies of <see cref="Critic"/>.</summary>
    public TwinCritic TargetCritic { get; }

    /// <summary>Current temperature exp(log alpha).</summary>
    public double Alpha => Math.Exp(logAlpha.ToSingle());

    /// <summary>Entropy target (-|A| unless set).</summary>
    public double TargetEntropy => targetEntropy;

    /// <summary>Gradient updates done so far.</summary>
    public long UpdateCount { get; private set; }

    /// <summary>An action for one observation: tanh(mean) when <paramref name="deterministic"/>, else a sample whose noise comes from <paramref name="random"/>.</summary>
    public float[] Act(ReadOnlySpan<float> observation, bool deterministic, Random? random = null) =>
        PolicyMath.Act(Actor, observation, deterministic, random);

    /// <summary>Samples a minibatch from <paramref name="buffer"/> and updates, all in one dispose scope.</summary>
    public SacUpdateStats Update(ReplayBuffer buffer, Random random)
    {
        using var scope = NewDisposeScope();
        return Update(buffer.Sample(Options.BatchSize, random));
    }

    /// <summary>One SAC update (critics, actor, temperature, targets) on <paramref name="batch"/>.</summary>
    public SacUpdateStats Update(TransitionBatch batch)
    {
        ObjectDisposedException.ThrowIf(disposed, this);
        using var scope = NewDisposeScope();
        Tensor alpha = logAlpha.detach().exp();

        // Critics: y = r + gamma (1 - terminal) (min Q'(s', a') - alpha log pi(a'|s')), a' ~ pi(.|s').
        Tensor target;
        using (no_grad())
        {
            var (nextAction, nextLogProb) = Actor.Sample(batch.NextObservation, generator);
            var (tq1, tq2) = TargetCritic.forward(batch.NextObservation, nextAction);
            Tensor softValue = minimum(tq1, tq2) - alpha * nextLogProb;
            target = batch.Reward + Options.Gamma * (1 - batch.Terminal) * softValue;
        }
        var (q1, q2) = Critic.forward(batch.Observation, batch.Action);
        Tensor criticLoss = nn.functional.mse_loss(q1, target) + nn.functional.mse_loss(q2, target);
        criticOptimizer.zero_grad();
        criticLoss.backward();
        criticOptimizer.step();

        // Actor: minimise E[alpha log pi(a|s) - min Q(s, a)], a reparameterised; critics frozen meanwhile.
        foreach (var p in criticParameters)
            p.requires_grad = false;
        var (action, logProb) = Actor.Sample(batch.Observation, generator);
        var (pq1, pq2) = Critic.forward(batch.Observation, action);
        Tensor actorLoss = (alpha * logProb - minimum(pq1, pq2)).mean();
        actorOptimizer.zero_grad();
        actorLoss.backward();
        actorOptimizer.step();
        foreach (var p in criticParameters)
            p.requires_grad = true;

        // Temperature: minimise -log alpha (log pi + target entropy).
        Tensor detachedLogProb = logProb.detach();
        if (Options.AutoTuneAlpha)
        {
            Tensor alphaLoss = -(logAlpha * (detachedLogProb + targetEntropy)).mean();
            alphaOptimizer.zero_grad();
            alphaLoss.backward();
            alphaOptimizer.step();
        }

        using (no_grad())
        {
            for (int i = 0; i < criticParameters.Length; i++)
                targetParameters[i].mul_(1 - Options.Tau).add_(criticParameters[i], alpha: Options.Tau);
        }
        UpdateCount++;
        return new SacUpdateStats(
            criticLoss.item<float>(), actorLoss.item<float>(), alpha.item<float>(),
            -detachedLogProb.mean().item<float>(), q1.mean().item<float>());
    }

    /// <summary>Soft Q-target loss of the critics on <paramref name="batch"/> without changing anything (for diagnostics).</summary>
    public float CriticLoss(TransitionBatch batch)
    {
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var state = generator.get_state();
        Tensor alpha = logAlpha.detach().exp();
        var (nextAction, nextLogProb) = Actor.Sample(batch.NextObservation, generator);
        generator.set_state(state);
        var (tq1, tq2) = TargetCritic.forward(batch.NextObservation, nextAction);
        Tensor target = batch.Reward + Options.Gamma * (1 - batch.Terminal) * (minimum(tq1, tq2) - alpha * nextLogProb);
        var (q1, q2) = Critic.forward(batch.Observation, batch.Action);
        return (nn.functional.mse_loss(q1, target) + nn.functional.mse_loss(q2, target)).item<float>();
    }

    /// <summary>Writes the actor as a policy file (see <see cref="Policy"/>).</summary>
    public void SavePolicy(Stream stream, string environment, long trainingSteps = 0) =>
        Policy.Write(stream, environment, ObservationSize, ActionSize, Options.HiddenSizes, trainingSteps, Actor);

    /// <summary>Writes the full learning state: sizes, options, networks, log alpha, optimiser states, RNG state, update count.</summary>
    public void SaveCheckpoint(BinaryWriter writer)
    {
        writer.Write(Magic);
        writer.Write(FormatVersion);
        writer.Write(ObservationSize);
        writer.Write(ActionSize);
        writer.Write(Options.HiddenSizes.Length);
        foreach (int h in Options.HiddenSizes)
            writer.Write(h);
        writer.Write(Options.LearningRate);
        writer.Write(Options.Gamma);
        writer.Write(Options.Tau);
        writer.Write(Options.BatchSize);
        writer.Write(Options.InitialAlpha);
        writer.Write(Options.TargetEntropy.HasValue);
        writer.Write(Options.TargetEntropy ?? 0);
        writer.Write(Options.AutoTuneAlpha);
        writer.Write(Options.Seed);
        writer.Write(UpdateCount);
        writer.Write(logAlpha.ToSingle());
        WriteModule(writer, Actor);
        WriteModule(writer, Critic);
        WriteModule(writer, TargetCritic);
        WriteOptimizer(writer, actorOptimizer);
        WriteOptimizer(writer, criticOptimizer);
        WriteOptimizer(writer, alphaOptimizer);
        using Tensor state = generator.get_state();
        byte[] bytes = state.data<byte>().ToArray();
        writer.Write(bytes.Length);
        writer.Write(bytes);
    }

    /// <summary>Reads an agent written by <see cref="SaveCheckpoint"/>; it continues exactly where it stopped.</summary>
    public static SacAgent LoadCheckpoint(BinaryReader reader)
    {
        if (reader.ReadUInt32() != Magic || reader.ReadInt32() != FormatVersion)
            throw new InvalidDataException("Not a SAC checkpoint of this version.");
        int obs = reader.ReadInt32(), act = reader.ReadInt32();
        var hidden = new int[reader.ReadInt32()];
        for (int i = 0; i < hidden.Length; i++)
            hidden[i] = reader.ReadInt32();
        double lr = reader.ReadDouble(), gamma = reader.ReadDouble(), tau = reader.ReadDouble();
        int batch = reader.ReadInt32();
        double initialAlpha = reader.ReadDouble();
        bool hasTarget = reader.ReadBoolean();
        double targetEntropy = reader.ReadDouble();
        bool autoTune = reader.ReadBoolean();
        int seed = reader.ReadInt32();
        var options = new SacOptions
        {
            HiddenSizes = hidden, LearningRate = lr, Gamma = gamma, Tau = tau, BatchSize = batch,
            InitialAlpha = initialAlpha, TargetEntropy = hasTarget ? targetEntropy : null, AutoTuneAlpha = autoTune, Seed = seed,
        };
        var agent = new SacAgent(obs, act, options);
        agent.UpdateCount = reader.ReadInt64();
        float logAlphaValue = reader.ReadSingle();
        using (no_grad())
            agent.logAlpha.fill_(logAlphaValue);
        ReadModule(reader, agent.Actor);
        ReadModule(reader, agent.Critic);
        ReadModule(reader, agent.TargetCritic);
        ReadOptimizer(reader, agent.actorOptimizer);
        ReadOptimizer(reader, agent.criticOptimizer);
        ReadOptimizer(reader, agent.alphaOptimizer);
        byte[] bytes = reader.ReadBytes(reader.ReadInt32());
        using Tensor state = tensor(bytes, dtype: ScalarType.Byte);
        agent.generator.set_state(state);
        return agent;
    }

    internal static void WriteModule(BinaryWriter writer, nn.Module module)
    {
        using var memory = new MemoryStream();
        module.save(memory); // closes the stream; ToArray still works on a closed MemoryStream
        byte[] bytes = memory.ToArray();
        writer.Write((long)bytes.Length);
        writer.Write(bytes);
    }

    internal static void ReadModule(BinaryReader reader, nn.Module module)
    {
        long length = reader.ReadInt64();
        using var memory = new MemoryStream(reader.ReadBytes(checked((int)length)));
        module.load(memory);
    }

    private static void WriteOptimizer(BinaryWriter writer, optim.Optimizer optimizer)
    {
        using var memory = new MemoryStream();
        using (var inner = new BinaryWriter(memory, System.Text.Encoding.UTF8, leaveOpen: true))
            ((OptimizerHelper)optimizer).save_state_dict(inner);
        byte[] bytes = memory.ToArray();
        writer.Write((long)bytes.Length);
        writer.Write(bytes);
    }

    private static void ReadOptimizer(BinaryReader reader, optim.Optimizer optimizer)
    {
        long length = reader.ReadInt64();
        using var memory = new MemoryStream(reader.ReadBytes(checked((int)length)));
        using var inner = new BinaryReader(memory);
        ((OptimizerHelper)optimizer).load_state_dict(inner);
    }

    /// <inheritdoc />
    public void Dispose()
    {
        if (disposed)
            return;
        disposed = true;
        Actor.Dispose();
        Critic.Dispose();
        TargetCritic.Dispose();
        logAlpha.Dispose();
        generator.Dispose();
    }
}
