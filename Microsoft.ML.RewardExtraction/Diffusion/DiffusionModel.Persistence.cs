using System.Text;
using TorchSharp;
using static TorchSharp.torch;

namespace Microsoft.ML.RewardExtraction;

public sealed partial class DiffusionModel
{
    /// <summary>The component kind written in the model header.</summary>
    public const string ComponentKind = "DiffusionModel";

    /// <summary>The format version this library writes (and the newest it reads): 2, sealed with a hash; 1 had none.</summary>
    public const int FormatVersion = 2;

    private const int SealedFrom = 2;

    // *** Binary format *** (version 2)
    // ModelHeader sealed stream ("MLRW", 2, "DiffusionModel", body length, SHA-256), whose body is:
    // shape, schedule (kind, T), int prediction target, bool clamp, network kind and hyperparameters, normaliser,
    // network weights (TorchSharp module format, length-prefixed). Version 1: the same body right after the header.

    /// <summary>
    /// Writes the model: the <see cref="ModelHeader"/> ("MLRW", version, "DiffusionModel") with the hash of what follows, the
    /// shape, the schedule (kind, T), the prediction target, the clamp flag, the network kind and hyperparameters, the
    /// normaliser, and the network weights (TorchSharp module format, length-prefixed). The stream is left open.
    /// </summary>
    /// <exception cref="NotSupportedException">The denoiser or normaliser is not one the library can rebuild.</exception>
    public void Save(Stream stream)
    {
        ArgumentNullException.ThrowIfNull(stream);
        var network = DenoiserOptions.From(Denoiser);
        ModelHeader.WriteSealed(stream, ComponentKind, FormatVersion, writer =>
        {
            Shape.Save(writer);
            Diffusion.Schedule.Save(writer);
            writer.Write((int)Diffusion.Target);
            writer.Write(Diffusion.ClipDenoised);
            network.Save(writer);
            Normalizer.Save(writer);
            ModuleSerializer.WriteModule(writer, Denoiser);
        });
    }

    /// <summary>Writes the model to a file (see <see cref="Save(Stream)"/>). The bytes go to a temporary file beside it
    /// that is then moved over <paramref name="path"/>, so a failed or interrupted save never leaves a truncated model.</summary>
    public void Save(string path) => AtomicFile.Write(path, Save);

    /// <summary>Reads a model written by <see cref="Save(Stream)"/> onto <paramref name="device"/> (the CPU when null): files do
    /// not record a device, so a model saved from one device loads onto any other.</summary>
    /// <exception cref="InvalidDataException">Not an MLReward stream, another component kind, an unsupported version,
    /// truncated or damaged data (the hash does not match), non-finite weights, or contents that do not describe a valid
    /// model; the message says what was expected and found.</exception>
    public static DiffusionModel Load(Stream stream, Device? device = null) => Load(stream, device, out _);

    private static DiffusionModel Load(Stream stream, Device? device, out bool verified)
    {
        ArgumentNullException.ThrowIfNull(stream);
        using var outer = new BinaryReader(stream, Encoding.UTF8, leaveOpen: true);
        using var body = ModelHeader.ReadSealed(outer, ComponentKind, FormatVersion, SealedFrom);
        verified = body.Verified;
        var reader = body.Reader;
        Denoiser? denoiser = null;
        GaussianDiffusion? diffusion = null;
        try
        {
            var shape = SampleShape.Load(reader);
            var schedule = NoiseSchedule.Load(reader);
            var target = (PredictionTarget)reader.ReadInt32();
            if (!Enum.IsDefined(target))
                throw new InvalidDataException($"Unknown prediction target {(int)target} in the model data (expected {string.Join(" or ", Enum.GetNames<PredictionTarget>())}).");
            bool clip = reader.ReadBoolean();
            var network = DenoiserOptions.Load(reader);
            var normalizer = Normalizer.Load(reader);
            if (!normalizer.Shape.Equals(shape))
                throw new InvalidDataException($"The model's normaliser is for {normalizer.Shape} but the model's shape is {shape}.");
            try
            {
                denoiser = TorchRandom.Initialize(0, () => network.Create(shape));
            }
            catch (ArgumentException e)
            {
                throw new InvalidDataException($"The model data describe a network that cannot be built ({network} for {shape}): {e.Message}", e);
            }
            ModuleSerializer.ReadModule(reader, denoiser, "network weights");
            body.CheckFullyRead(ComponentKind);
            MoveTo(denoiser, device);
            diffusion = new GaussianDiffusion(schedule, target, clip, device);
            return new DiffusionModel(shape, diffusion, denoiser, normalizer);
        }
        catch (Exception e) when (e is EndOfStreamException or ArgumentException or OverflowException)
        {
            denoiser?.Dispose();
            diffusion?.Dispose();
            throw new InvalidDataException(e is EndOfStreamException
                ? "Truncated model data: the stream ended inside the DiffusionModel description."
                : $"Invalid DiffusionModel data: {e.Message}", e);
        }
        catch
        {
            denoiser?.Dispose();
            diffusion?.Dispose();
            throw;
        }
    }

    /// <summary>Reads a model from a file (see <see cref="Load(Stream, Device?)"/>); errors name the file.</summary>
    /// <param name="path">The model file.</param>
    /// <param name="warning">Receives the warning given for a file written without a hash (format version 1); null =
    /// <see cref="System.Diagnostics.Trace.TraceWarning(string)"/>.</param>
    /// <param name="device">Where the model goes; the CPU when null.</param>
    public static DiffusionModel Load(string path, Action<string>? warning = null, Device? device = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        using var file = File.OpenRead(path);
        DiffusionModel model;
        try
        {
            model = Load(file, device, out bool verified);
            if (!verified)
                ModelHeader.WarnUnverified("Diffusion model file", path, warning);
        }
        catch (InvalidDataException e)
        {
            throw new InvalidDataException($"Cannot load diffusion model file '{Path.GetFullPath(path)}': {e.Message}", e);
        }
        return model;
    }
}
