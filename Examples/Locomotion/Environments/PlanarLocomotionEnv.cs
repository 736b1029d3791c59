using System.Reflection;

namespace MLReward.Locomotion;

/// <summary>
/// Shared machinery of the planar MuJoCo tasks: generalized coordinates start with rootx, rootz, rooty;
/// the reward's forward term is the root's x displacement over the frame-skip interval divided by its duration.
/// </summary>
public abstract class PlanarLocomotionEnv : ILocomotionEnv
{
    private readonly double[] _ctrl;
    private bool _running;
    private bool _disposed;

    /// <summary>Loads <paramref name="xml"/> and checks that it has the expected sizes.</summary>
    protected PlanarLocomotionEnv(string xml, int frameSkip, int expectedNq, int expectedNu)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(frameSkip, 1);
        Model = MjModel.FromXmlString(xml);
        try
        {
            if (Model.Nq != expectedNq || Model.Nv != expectedNq || Model.Nu != expectedNu)
                throw new ArgumentException($"{GetType().Name} needs nq = nv = {expectedNq} and nu = {expectedNu}; the model has nq={Model.Nq}, nv={Model.Nv}, nu={Model.Nu}.", nameof(xml));
            Data = new MjData(Model);
        }
        catch
        {
            Model.Dispose();
            throw;
        }
        FrameSkip = frameSkip;
        _ctrl = new double[Model.Nu];
    }

    /// <inheritdoc />
    public abstract string Name { get; }

    /// <inheritdoc />
    public abstract int ObservationSize { get; }

    /// <inheritdoc />
    public int ActionSize => Model.Nu;

    /// <inheritdoc />
    public int MaxEpisodeSteps { get; init; } = 1000;

    /// <summary>Physics steps per environment step.</summary>
    public int FrameSkip { get; }

    /// <inheritdoc />
    public double ControlTimestep => Model.Timestep * FrameSkip;

    /// <inheritdoc />
    public int StepCount { get; private set; }

    /// <summary>The compiled model (for inspection; changing it changes the task).</summary>
    public MjModel Model { get; }

    /// <summary>The simulation state; tests and data tools may read or set qpos/qvel directly.</summary>
    public MjData Data { get; }

    /// <summary>Half-width of the uniform noise added to qpos at reset.</summary>
    protected abstract double PositionNoise { get; }

    /// <summary>Half-width of the uniform noise added to qvel at reset.</summary>
    protected abstract double VelocityNoise { get; }

    /// <summary>Weight of the control cost weight x |a|^2 (a clipped).</summary>
    protected abstract double ControlCostWeight { get; }

    /// <inheritdoc />
    public float[] Reset(int seed) => Reset(new Random(seed));

    /// <inheritdoc />
    public float[] Reset(Random random)
    {
        ArgumentNullException.ThrowIfNull(random);
        ObjectDisposedException.ThrowIf(_disposed, this);
        Data.Reset();
        Span<double> qpos = Data.Qpos, qvel = Data.Qvel;
        for (int i = 0; i < qpos.Length; i++)
            qpos[i] += PositionNoise * (2 * random.NextDouble() - 1);
        for (int i = 0; i < qvel.Length; i++)
            qvel[i] += VelocityNoise * (2 * random.NextDouble() - 1);
        Data.Forward();
        StepCount = 0;
        _running = true;
        return Observe();
    }

    /// <summary>
    /// Puts the simulation in the state (<paramref name="qpos"/>, <paramref name="qvel"/>) and starts an episode
    /// from it (step count 0); returns its observation. For replaying or branching from recorded states.
    /// </summary>
    public float[] SetState(ReadOnlySpan<double> qpos, ReadOnlySpan<double> qvel)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (qpos.Length != Model.Nq || qvel.Length != Model.Nv)
            throw new ArgumentException($"Expected qpos of length {Model.Nq} and qvel of length {Model.Nv}.");
        Data.Reset();
        qpos.CopyTo(Data.Qpos);
        qvel.CopyTo(Data.Qvel);
        Data.Forward();
        StepCount = 0;
        _running = true;
        return Observe();
    }

    /// <inheritdoc />
    public LocomotionStep Step(ReadOnlySpan<float> action)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (!_running)
            throw new InvalidOperationException($"The {Name} episode is not running: call Reset first (or after it terminated or was truncated).");
        if (action.Length != ActionSize)
            throw new ArgumentException($"{Name} takes actions of length {ActionSize}, not {action.Length}.", nameof(action));

        double sumSquares = 0;
        for (int i = 0; i < action.Length; i++)
        {
            float a = action[i];
            if (!float.IsFinite(a))
                throw new ArgumentException($"Action component {i} is {a}.", nameof(action));
            double clipped = Math.Clamp((double)a, -1.0, 1.0);
            _ctrl[i] = clipped;
            sumSquares += clipped * clipped;
        }

        _ctrl.CopyTo(Data.Ctrl);
        int diverged = Data.WarningCount(MjWarning.BadQacc);
        double xBefore = Data.Qpos[0];
        Data.Step(FrameSkip);
        double xAfter = Data.Qpos[0];
        bool blewUp = Data.WarningCount(MjWarning.BadQacc) != diverged;

        double forwardVelocity = blewUp ? 0 : (xAfter - xBefore) / ControlTimestep;
        double reward = forwardVelocity - ControlCostWeight * sumSquares + AliveBonus;
        StepCount++;
        bool terminated = blewUp || IsTerminal();
        bool truncated = !terminated && StepCount >= MaxEpisodeSteps;
        _running = !(terminated || truncated);
        return new LocomotionStep(Observe(), reward, terminated, truncated, forwardVelocity);
    }

    /// <summary>Reward added every step (the hopper's and the walker's alive bonus); 0 by default.</summary>
    protected virtual double AliveBonus => 0;

    /// <summary>Whether the current state ends the episode; never by default.</summary>
    protected virtual bool IsTerminal() => false;

    /// <summary>The observation of the current state.</summary>
    public abstract float[] Observe();

    /// <inheritdoc />
    public void Dispose()
    {
        if (_disposed)
            return;
        _disposed = true;
        Data.Dispose();
        Model.Dispose();
        GC.SuppressFinalize(this);
    }

    /// <summary>Reads an embedded MJCF model of this assembly.</summary>
    internal static string ReadModel(string fileName)
    {
        string name = "MLReward.Locomotion.Models." + fileName;
        using Stream stream = typeof(PlanarLocomotionEnv).Assembly.GetManifestResourceStream(name)
            ?? throw new InvalidOperationException($"Embedded model '{name}' is missing.");
        using var reader = new StreamReader(stream);
        return reader.ReadToEnd();
    }
}

/// <summary>The MJCF text of the project's planar models.</summary>
public static class LocomotionModels
{
    /// <summary>The cheetah-like runner (9 generalized coordinates, 6 actuators).</summary>
    public static string CheetahXml { get; } = PlanarLocomotionEnv.ReadModel("cheetah.xml");

    /// <summary>The one-legged hopper (6 generalized coordinates, 3 actuators).</summary>
    public static string HopperXml { get; } = PlanarLocomotionEnv.ReadModel("hopper.xml");

    /// <summary>The two-legged walker (9 generalized coordinates, 6 actuators).</summary>
    public static string WalkerXml { get; } = PlanarLocomotionEnv.ReadModel("walker.xml");
}
