using System.Text;
using TorchSharp;

namespace Microsoft.ML.RewardExtraction;

public sealed partial class DiffusionModel
{
    /// <summary>The component kind written in the model header.</summary>
    public const string ComponentKind = "DiffusionModel";

    /// <summary>The format version this library writes (and the newest it reads).</summary>
    public const int FormatVersion = 1;

    /// <summary>
    /// Writes the model: the <see cref="ModelHeader"/> ("MLRW", version, "DiffusionModel"), the shape, the schedule
    /// (kind, T), the prediction target, the clamp flag, the network kind and hyperparameters, the normaliser, and
    /// the network weights (TorchSharp module format, length-prefixed). The stream is left open.
    /// </summary>
    /// <exception cref="NotSupportedException">The denoiser or normaliser is not one the library can rebuild.</exception>
    public void Save(Stream stream)
    {
        ArgumentNullException.ThrowIfNull(stream);
        var network = DenoiserOptions.From(Denoiser);
        using var writer = new BinaryWriter(stream, Encoding.UTF8, leaveOpen: true);
        ModelHeader.Write(writer, ComponentKind, FormatVersion);
        Shape.Save(writer);
        Diffusion.Schedule.Save(writer);
        writer.Write((int)Diffusion.Target);
        writer.Write(Diffusion.ClipDenoised);
        network.Save(writer);
        Normalizer.Save(writer);
        ModuleSerializer.WriteModule(writer, Denoiser);
        writer.Flush();
    }

    /// <summary>Writes the model to a file (see <see cref="Save(Stream)"/>). The bytes go to a temporary file beside it
    /// that is then moved over <paramref name="path"/>, so a failed or interrupted save never leaves a truncated model.</summary>
    public void Save(string path) => AtomicFile.Write(path, Save);

    /// <summary>Reads a model written by <see cref="Save(Stream)"/>. The network lives on the CPU.</summary>
    /// <exception cref="InvalidDataException">Not an MLReward stream, another component kind, an unsupported version,
    /// truncated data, or contents that do not describe a valid model; the message says what was expected and found.</exception>
    public static DiffusionModel Load(Stream stream)
    {
        ArgumentNullException.ThrowIfNull(stream);
        using var reader = new BinaryReader(stream, Encoding.UTF8, leaveOpen: true);
        ModelHeader.Read(reader, ComponentKind, FormatVersion);
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
            diffusion = new GaussianDiffusion(schedule, target, clip);
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

    /// <summary>Reads a model from a file (see <see cref="Load(Stream)"/>).</summary>
    public static DiffusionModel Load(string path)
    {
        using var file = File.OpenRead(path);
        return Load(file);
    }
}
