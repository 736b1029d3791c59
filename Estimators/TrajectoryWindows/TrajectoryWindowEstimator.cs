using Microsoft.ML.Data;
using Microsoft.ML.Runtime;

namespace Microsoft.ML.RewardExtraction
{
    /// <summary>
    /// Estimator for <see cref="TrajectoryWindowTransformer"/>: turns logged transitions (one row per time step) into
    /// fixed-length trajectory windows (one row per window), the sample shape the diffusion models train on.
    /// Nothing is learned: <see cref="Fit"/> checks the input schema and records the size of each feature column.
    /// </summary>
    /// <remarks>
    /// <para>Input: an episode id column (integer, key or text) and one or more feature columns (<see cref="float"/>
    /// or known-size vectors of <see cref="float"/>). The rows of one episode must be consecutive and in time order.</para>
    /// <para>Output: the episode id, the window's first step (<see cref="Options.StartStepColumnName"/>, <see cref="int"/>)
    /// and the window (<see cref="Options.OutputColumnName"/>), a vector of Horizon x D floats row-major by time:
    /// the D feature values of the window's first step, then those of the next step, and so on.</para>
    /// <para>Create it with <c>mlContext.RewardExtraction().TrajectoryWindows(...)</c>.</para>
    /// </remarks>
    public sealed class TrajectoryWindowEstimator : IEstimator<TrajectoryWindowTransformer>
    {
        /// <summary>Settings of <see cref="TrajectoryWindowEstimator"/>.</summary>
        public sealed class Options
        {
            /// <summary>The column identifying each row's episode: any integer type, a key, or text. Default "Episode".</summary>
            public string EpisodeColumnName = "Episode";

            /// <summary>
            /// The feature columns, concatenated in this order at each step (e.g. actions, then observations). Each is a
            /// <see cref="float"/> or a known-size vector of <see cref="float"/>. Required.
            /// </summary>
            public string[] FeatureColumnNames = Array.Empty<string>();

            /// <summary>The output window column. Default "Features", the default input of the diffusion, reward and
            /// one-call estimators, so that the stages chain without naming it.</summary>
            public string OutputColumnName = "Features";

            /// <summary>The output column holding each window's first step within its episode (0-based). Default "StartStep".</summary>
            public string StartStepColumnName = "StartStep";

            /// <summary>Steps per window, at least 1. Required (no default).</summary>
            public int Horizon;

            /// <summary>Steps between the starts of consecutive windows of one episode, at least 1. Default 1 (every window).</summary>
            public int Stride = 1;

            /// <summary>What to do with episodes shorter than <see cref="Horizon"/>. Default <see cref="ShortEpisodeHandling.Skip"/>.</summary>
            public ShortEpisodeHandling ShortEpisodes = ShortEpisodeHandling.Skip;

            /// <summary>
            /// What to do with NaN or infinite feature values. Default <see cref="InvalidValueHandling.Error"/>, which checks
            /// every input row, also rows that end up in no window.
            /// </summary>
            public InvalidValueHandling InvalidValues = InvalidValueHandling.Error;

            /// <summary>
            /// A Boolean column constant over each episode (e.g. whether an expert produced it), copied to every window of
            /// the episode under the same name: the label of <c>ExtractRelativeReward</c> and <c>Evaluate</c>. A value that
            /// changes within an episode is an error. Default null (none).
            /// </summary>
            public string? LabelColumnName;

            /// <summary>
            /// Whether windows also start at every <see cref="Stride"/> step after the episode's last full window, up to its
            /// last step, the steps past the end filled with copies of the last step. This is Diffuser's padding, which the
            /// paper's Maze2D data use: an episode that ends on arrival then rests at its goal, so the end of the behaviour is
            /// in as many windows as its start. Episodes shorter than <see cref="Horizon"/> give a window at every stride
            /// step too. Default false.
            /// </summary>
            public bool PadEpisodeEnds;

            /// <summary>Feature columns that are zero, not copied, in the steps added by <see cref="PadEpisodeEnds"/>
            /// (e.g. the action column). Each must be one of <see cref="FeatureColumnNames"/>. Default none.</summary>
            public string[] ZeroPaddedColumnNames = Array.Empty<string>();

            /// <summary>
            /// With <see cref="PadEpisodeEnds"/>: windows start up to this many steps past the episode's last step, as if the
            /// episode rested in its last state that much longer (Diffuser pads every episode to its longest length, so a
            /// window may start at the end and hold nothing but the rest). At least 0. Default 0.
            /// </summary>
            public int ExtraEndSteps;
        }

        private readonly IHost _host;
        private readonly Options _options;

        internal TrajectoryWindowEstimator(IHostEnvironment env, Options options)
        {
            Contracts.CheckValue(env, nameof(env));
            _host = env.Register(nameof(TrajectoryWindowEstimator));
            _host.CheckValue(options, nameof(options));
            _host.CheckUserArg(Enum.IsDefined(options.ShortEpisodes), nameof(Options.ShortEpisodes), "unknown value");
            _host.CheckUserArg(Enum.IsDefined(options.InvalidValues), nameof(Options.InvalidValues), "unknown value");
            TrajectoryWindowTransformer.CheckSettings(_host, options.OutputColumnName, options.EpisodeColumnName,
                options.StartStepColumnName, options.FeatureColumnNames, options.Horizon, options.Stride, options.LabelColumnName,
                options.PadEpisodeEnds, options.ZeroPaddedColumnNames, options.ExtraEndSteps);
            _options = new Options
            {
                EpisodeColumnName = options.EpisodeColumnName,
                FeatureColumnNames = (string[])options.FeatureColumnNames.Clone(),
                OutputColumnName = options.OutputColumnName,
                StartStepColumnName = options.StartStepColumnName,
                Horizon = options.Horizon,
                Stride = options.Stride,
                ShortEpisodes = options.ShortEpisodes,
                InvalidValues = options.InvalidValues,
                LabelColumnName = options.LabelColumnName,
                PadEpisodeEnds = options.PadEpisodeEnds,
                ExtraEndSteps = options.ExtraEndSteps,
                ZeroPaddedColumnNames = (string[])(options.ZeroPaddedColumnNames ?? Array.Empty<string>()).Clone(),
            };
        }

        /// <summary>
        /// Checks the schema of <paramref name="input"/> (reading no rows) and returns the transformer.
        /// </summary>
        /// <param name="input">Data with the episode and feature columns.</param>
        /// <returns>A transformer fixed to the feature sizes of <paramref name="input"/>.</returns>
        public TrajectoryWindowTransformer Fit(IDataView input)
        {
            _host.CheckValue(input, nameof(input));
            var sizes = TrajectoryWindowTransformer.CheckInputSchema(_host, input.Schema, _options.EpisodeColumnName, _options.FeatureColumnNames);
            if (_options.LabelColumnName is not null)
                TrajectoryWindowTransformer.CheckLabelColumn(_host, input.Schema, _options.LabelColumnName);
            return new TrajectoryWindowTransformer(_host, _options.OutputColumnName, _options.EpisodeColumnName, _options.StartStepColumnName,
                _options.FeatureColumnNames, sizes, _options.Horizon, _options.Stride, _options.ShortEpisodes, _options.InvalidValues, _options.LabelColumnName,
                _options.PadEpisodeEnds, _options.ZeroPaddedColumnNames, _options.ExtraEndSteps);
        }

        /// <summary>
        /// Returns the <see cref="SchemaShape"/> of the output: the episode id column, the start step and the window column.
        /// Used for schema propagation and verification in a pipeline.
        /// </summary>
        public SchemaShape GetOutputSchema(SchemaShape inputSchema)
        {
            _host.CheckValue(inputSchema, nameof(inputSchema));
            if (!inputSchema.TryFindColumn(_options.EpisodeColumnName, out var episode))
                throw _host.ExceptSchemaMismatch(nameof(inputSchema), "episode", _options.EpisodeColumnName);
            bool episodeOk = episode.Kind == SchemaShape.Column.VectorKind.Scalar
                && (episode.IsKey || TrajectoryWindowTransformer.IsValidEpisodeType(episode.ItemType));
            if (!episodeOk)
            {
                throw _host.ExceptSchemaMismatch(nameof(inputSchema), "episode", _options.EpisodeColumnName,
                    TrajectoryWindowTransformer.ExpectedEpisodeType, episode.GetTypeString());
            }

            foreach (var name in _options.FeatureColumnNames)
            {
                if (!inputSchema.TryFindColumn(name, out var column))
                    throw _host.ExceptSchemaMismatch(nameof(inputSchema), "input", name);
                bool ok = column.ItemType == NumberDataViewType.Single && !column.IsKey
                    && column.Kind != SchemaShape.Column.VectorKind.VariableVector;
                if (!ok)
                {
                    throw _host.ExceptSchemaMismatch(nameof(inputSchema), "input", name,
                        TrajectoryWindowTransformer.ExpectedFeatureType, column.GetTypeString());
                }
            }

            var columns = new List<SchemaShape.Column>
            {
                new SchemaShape.Column(_options.EpisodeColumnName, episode.Kind, episode.ItemType, episode.IsKey, episode.Annotations),
                new SchemaShape.Column(_options.StartStepColumnName, SchemaShape.Column.VectorKind.Scalar, NumberDataViewType.Int32, false),
                new SchemaShape.Column(_options.OutputColumnName, SchemaShape.Column.VectorKind.Vector, NumberDataViewType.Single, false),
            };
            if (_options.LabelColumnName is { } labelName)
            {
                if (!inputSchema.TryFindColumn(labelName, out var label))
                    throw _host.ExceptSchemaMismatch(nameof(inputSchema), "label", labelName);
                if (label.Kind != SchemaShape.Column.VectorKind.Scalar || label.ItemType != BooleanDataViewType.Instance)
                    throw _host.ExceptSchemaMismatch(nameof(inputSchema), "label", labelName, "Boolean", label.GetTypeString());
                columns.Add(new SchemaShape.Column(labelName, SchemaShape.Column.VectorKind.Scalar, BooleanDataViewType.Instance, false));
            }
            return new SchemaShape(columns);
        }
    }
}
