using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.RewardExtraction;
using Microsoft.ML.Runtime;

[assembly: LoadableClass(TrajectoryWindowTransformer.Summary, typeof(TrajectoryWindowTransformer), null, typeof(SignatureLoadModel),
    TrajectoryWindowTransformer.UserName, TrajectoryWindowTransformer.LoaderSignature)]

namespace Microsoft.ML.RewardExtraction
{
    /// <summary>What <see cref="TrajectoryWindowTransformer"/> does with an episode shorter than the horizon.</summary>
    public enum ShortEpisodeHandling
    {
        /// <summary>The episode yields no window.</summary>
        Skip = 0,

        /// <summary>The episode yields one window starting at step 0, its missing steps filled with copies of the last step.</summary>
        PadWithLast = 1,
    }

    /// <summary>What <see cref="TrajectoryWindowTransformer"/> does with a NaN or infinite feature value.</summary>
    public enum InvalidValueHandling
    {
        /// <summary>Throw, naming the column, the input row and the episode. Every input row is checked.</summary>
        Error = 0,

        /// <summary>Drop every window that contains a step with such a value.</summary>
        SkipWindow = 1,
    }

    /// <summary>
    /// Cuts logged transitions (one row per time step) into fixed-length trajectory windows (one row per window):
    /// the features of <see cref="Horizon"/> consecutive steps of one episode, concatenated row-major by time into a
    /// vector of <see cref="Horizon"/> x <see cref="TransitionDimension"/> floats. The output has three columns:
    /// the episode id (same name and type as the input's), the window's first step within its episode
    /// (<see cref="StartStepColumnName"/>, <see cref="int"/>), and the window (<see cref="OutputColumnName"/>); and a
    /// fourth, the episode's label, when <see cref="LabelColumnName"/> is set.
    /// </summary>
    /// <remarks>
    /// <para>Rows of one episode must be consecutive in the input (in time order); an episode id that reappears after
    /// another episode is an error. Within an episode of length L, windows start at steps 0, Stride, 2 Stride, ...
    /// while start + Horizon &lt;= L; trailing steps that do not fill a window are dropped, unless
    /// <see cref="PadEpisodeEnds"/> is set.</para>
    /// <para><see cref="Transform"/> is lazy and streams its input once per cursor; the number of windows is not
    /// known in advance (<see cref="IDataView.GetRowCount"/> returns <see langword="null"/>).</para>
    /// <para>Create it with <c>mlContext.RewardExtraction().TrajectoryWindows(...)</c>.</para>
    /// </remarks>
    public sealed class TrajectoryWindowTransformer : ITransformer
    {
        internal const string Summary = "Cuts per-step transition rows into fixed-length trajectory windows.";
        internal const string UserName = "Trajectory Window Transformer";
        internal const string LoaderSignature = "TrajectoryWindows";

        private static VersionInfo GetVersionInfo()
        {
            return new VersionInfo(
                modelSignature: "TRAJWNDW",
                verWrittenCur: 0x00010003, // Padded episode ends
                verReadableCur: 0x00010001,
                verWeCanReadBack: 0x00010001,
                loaderSignature: LoaderSignature,
                loaderAssemblyName: typeof(TrajectoryWindowTransformer).Assembly.FullName);
        }

        private readonly IHost _host;
        private readonly string[] _featureColumnNames;
        private readonly int[] _featureSizes;

        /// <summary>The input column that identifies each row's episode; also the name of the output id column.</summary>
        public string EpisodeColumnName { get; }

        /// <summary>The input feature columns, concatenated in this order at each step.</summary>
        public IReadOnlyList<string> FeatureColumnNames => _featureColumnNames;

        /// <summary>How many values each feature column contributes per step (1 for a scalar), as seen at fit time.</summary>
        public IReadOnlyList<int> FeatureSizes => _featureSizes;

        /// <summary>Values per step: the sum of <see cref="FeatureSizes"/>.</summary>
        public int TransitionDimension { get; }

        /// <summary>The output window column, a vector of <see cref="Horizon"/> x <see cref="TransitionDimension"/> floats.</summary>
        public string OutputColumnName { get; }

        /// <summary>The output column holding each window's first step within its episode (0-based).</summary>
        public string StartStepColumnName { get; }

        /// <summary>Steps per window.</summary>
        public int Horizon { get; }

        /// <summary>Steps between the starts of consecutive windows of one episode.</summary>
        public int Stride { get; }

        /// <summary>What happens to episodes shorter than <see cref="Horizon"/>.</summary>
        public ShortEpisodeHandling ShortEpisodes { get; }

        /// <summary>What happens to NaN or infinite feature values.</summary>
        public InvalidValueHandling InvalidValues { get; }

        /// <summary>A Boolean input column constant over each episode (e.g. expert or not), copied to every window of the
        /// episode under the same name; null when there is none.</summary>
        public string? LabelColumnName { get; }

        /// <summary>
        /// Whether windows also start at every stride step after the episode's last full window, up to its last step, with
        /// the steps past the episode's end filled with copies of its last step (Diffuser's padding: an episode that ends
        /// at a goal then rests there).
        /// </summary>
        public bool PadEpisodeEnds { get; }

        /// <summary>Feature columns that are zero, not copied, in the steps that padding adds (e.g. the action: nothing is
        /// done after the end).</summary>
        public IReadOnlyList<string> ZeroPaddedColumnNames => _zeroPaddedColumnNames;

        private readonly string[] _zeroPaddedColumnNames;

        /// <summary>With <see cref="PadEpisodeEnds"/>, how many steps past its last step an episode is taken to rest in its
        /// last state: windows start up to this many steps after the last step (0: up to the last step).</summary>
        public int ExtraEndSteps { get; }

        /// <summary>Always <see langword="false"/>: windows change the number of rows.</summary>
        public bool IsRowToRowMapper => false;

        internal TrajectoryWindowTransformer(IHostEnvironment env, string outputColumnName, string episodeColumnName,
            string startStepColumnName, string[] featureColumnNames, int[] featureSizes, int horizon, int stride,
            ShortEpisodeHandling shortEpisodes, InvalidValueHandling invalidValues, string? labelColumnName = null,
            bool padEpisodeEnds = false, string[]? zeroPaddedColumnNames = null, int extraEndSteps = 0)
        {
            Contracts.CheckValue(env, nameof(env));
            _host = env.Register(nameof(TrajectoryWindowTransformer));
            CheckSettings(_host, outputColumnName, episodeColumnName, startStepColumnName, featureColumnNames, horizon, stride, labelColumnName,
                padEpisodeEnds, zeroPaddedColumnNames, extraEndSteps);
            _host.CheckValue(featureSizes, nameof(featureSizes));
            _host.CheckParam(featureSizes.Length == featureColumnNames.Length && featureSizes.All(s => s > 0), nameof(featureSizes),
                "needs one positive size per feature column");
            _host.CheckParam(Enum.IsDefined(shortEpisodes), nameof(shortEpisodes), "unknown value");
            _host.CheckParam(Enum.IsDefined(invalidValues), nameof(invalidValues), "unknown value");

            OutputColumnName = outputColumnName;
            EpisodeColumnName = episodeColumnName;
            StartStepColumnName = startStepColumnName;
            _featureColumnNames = (string[])featureColumnNames.Clone();
            _featureSizes = (int[])featureSizes.Clone();
            long dimension = _featureSizes.Sum(s => (long)s);
            _host.CheckParam((long)horizon * dimension <= int.MaxValue, nameof(horizon), "Horizon x transition dimension exceeds the largest vector size");
            TransitionDimension = (int)dimension;
            Horizon = horizon;
            Stride = stride;
            ShortEpisodes = shortEpisodes;
            InvalidValues = invalidValues;
            LabelColumnName = labelColumnName;
            PadEpisodeEnds = padEpisodeEnds;
            ExtraEndSteps = extraEndSteps;
            _zeroPaddedColumnNames = zeroPaddedColumnNames is null ? Array.Empty<string>() : (string[])zeroPaddedColumnNames.Clone();
        }

        /// <summary>Per value of a step, whether padding sets it to zero.</summary>
        internal bool[] ZeroPaddedMask()
        {
            var mask = new bool[TransitionDimension];
            int offset = 0;
            for (int i = 0; i < _featureColumnNames.Length; i++)
            {
                if (_zeroPaddedColumnNames.Contains(_featureColumnNames[i]))
                    mask.AsSpan(offset, _featureSizes[i]).Fill(true);
                offset += _featureSizes[i];
            }
            return mask;
        }

        /// <summary>
        /// Checks the settings shared by the estimator and the transformer; throws <see cref="ArgumentOutOfRangeException"/>
        /// naming the offending option.
        /// </summary>
        internal static void CheckSettings(IExceptionContext ectx, string outputColumnName, string episodeColumnName,
            string startStepColumnName, string[] featureColumnNames, int horizon, int stride, string? labelColumnName,
            bool padEpisodeEnds = false, string[]? zeroPaddedColumnNames = null, int extraEndSteps = 0)
        {
            ectx.CheckUserArg(!string.IsNullOrEmpty(episodeColumnName), "EpisodeColumnName", "must name the episode id column");
            ectx.CheckUserArg(!string.IsNullOrEmpty(outputColumnName), "OutputColumnName", "must not be empty");
            ectx.CheckUserArg(!string.IsNullOrEmpty(startStepColumnName), "StartStepColumnName", "must not be empty");
            ectx.CheckUserArg(featureColumnNames != null && featureColumnNames.Length > 0, "FeatureColumnNames", "must name at least one feature column");
            ectx.CheckUserArg(featureColumnNames!.All(n => !string.IsNullOrEmpty(n)), "FeatureColumnNames", "must not contain empty names");
            ectx.CheckUserArg(horizon >= 1, "Horizon", $"must be at least 1, got {horizon}");
            ectx.CheckUserArg(stride >= 1, "Stride", $"must be at least 1, got {stride}");
            ectx.CheckUserArg(outputColumnName != episodeColumnName && outputColumnName != startStepColumnName
                && episodeColumnName != startStepColumnName, "OutputColumnName",
                $"the output columns need three different names, got '{episodeColumnName}' (episode), '{startStepColumnName}' (start step) and '{outputColumnName}' (window)");
            if (labelColumnName is not null)
            {
                ectx.CheckUserArg(labelColumnName.Length > 0, "LabelColumnName", "must be null (no label) or a column name");
                ectx.CheckUserArg(labelColumnName != outputColumnName && labelColumnName != episodeColumnName && labelColumnName != startStepColumnName
                    && !featureColumnNames.Contains(labelColumnName), "LabelColumnName",
                    $"'{labelColumnName}' is already the name of another input or output column");
            }
            ectx.CheckUserArg(extraEndSteps >= 0, "ExtraEndSteps", $"must be at least 0, got {extraEndSteps}");
            ectx.CheckUserArg(extraEndSteps == 0 || padEpisodeEnds, "ExtraEndSteps", "applies to padded episode ends only: set PadEpisodeEnds too");
            if (zeroPaddedColumnNames is { Length: > 0 })
            {
                ectx.CheckUserArg(padEpisodeEnds, "ZeroPaddedColumnNames", "applies to padded episode ends only: set PadEpisodeEnds too");
                foreach (var name in zeroPaddedColumnNames)
                {
                    ectx.CheckUserArg(featureColumnNames!.Contains(name), "ZeroPaddedColumnNames",
                        $"'{name}' is not one of the feature columns ({string.Join(", ", featureColumnNames!.Select(n => $"'{n}'"))})");
                }
                ectx.CheckUserArg(zeroPaddedColumnNames.Distinct().Count() == zeroPaddedColumnNames.Length, "ZeroPaddedColumnNames",
                    "names a column twice");
            }
        }

        /// <summary>Throws ML.NET's schema mismatch error unless <paramref name="name"/> is a Boolean column of <paramref name="schema"/>.</summary>
        internal static void CheckLabelColumn(IExceptionContext ectx, DataViewSchema schema, string name)
        {
            var label = schema.GetColumnOrNull(name);
            if (label == null)
                throw ectx.ExceptSchemaMismatch(nameof(schema), "label", name);
            if (label.Value.Type != BooleanDataViewType.Instance)
                throw ectx.ExceptSchemaMismatch(nameof(schema), "label", name, "Boolean", label.Value.Type.ToString());
        }

        /// <summary>
        /// Checks that <paramref name="schema"/> has the episode column (integer, key or text) and the feature columns
        /// (<see cref="float"/> or known-size vectors of <see cref="float"/>); returns each feature column's size.
        /// Throws ML.NET's schema mismatch error (<see cref="ArgumentOutOfRangeException"/>) naming the column.
        /// </summary>
        internal static int[] CheckInputSchema(IExceptionContext ectx, DataViewSchema schema, string episodeColumnName, string[] featureColumnNames)
        {
            ectx.CheckValue(schema, nameof(schema));
            var episode = schema.GetColumnOrNull(episodeColumnName);
            if (episode == null)
                throw ectx.ExceptSchemaMismatch(nameof(schema), "episode", episodeColumnName);
            if (!IsValidEpisodeType(episode.Value.Type))
                throw ectx.ExceptSchemaMismatch(nameof(schema), "episode", episodeColumnName, ExpectedEpisodeType, episode.Value.Type.ToString());

            var sizes = new int[featureColumnNames.Length];
            for (int i = 0; i < featureColumnNames.Length; i++)
            {
                var column = schema.GetColumnOrNull(featureColumnNames[i]);
                if (column == null)
                    throw ectx.ExceptSchemaMismatch(nameof(schema), "input", featureColumnNames[i]);
                var type = column.Value.Type;
                if (type == NumberDataViewType.Single)
                    sizes[i] = 1;
                else if (type is VectorDataViewType vector && vector.ItemType == NumberDataViewType.Single && vector.IsKnownSize)
                    sizes[i] = vector.Size;
                else
                    throw ectx.ExceptSchemaMismatch(nameof(schema), "input", featureColumnNames[i], ExpectedFeatureType, type.ToString());
            }
            return sizes;
        }

        internal const string ExpectedEpisodeType = "integer, key or text";
        internal const string ExpectedFeatureType = "Single or known-size vector of Single";

        internal static bool IsValidEpisodeType(DataViewType type)
            => type is KeyDataViewType || type is TextDataViewType
            || type == NumberDataViewType.SByte || type == NumberDataViewType.Byte
            || type == NumberDataViewType.Int16 || type == NumberDataViewType.UInt16
            || type == NumberDataViewType.Int32 || type == NumberDataViewType.UInt32
            || type == NumberDataViewType.Int64 || type == NumberDataViewType.UInt64;

        /// <summary>Checks <paramref name="inputSchema"/> against what this transformer was fitted on.</summary>
        private void CheckFittedInput(DataViewSchema inputSchema)
        {
            var sizes = CheckInputSchema(_host, inputSchema, EpisodeColumnName, _featureColumnNames);
            if (LabelColumnName is not null)
                CheckLabelColumn(_host, inputSchema, LabelColumnName);
            for (int i = 0; i < sizes.Length; i++)
            {
                if (sizes[i] != _featureSizes[i])
                {
                    string expected = _featureSizes[i] == 1 ? "Single or Vector<Single, 1>" : new VectorDataViewType(NumberDataViewType.Single, _featureSizes[i]).ToString();
                    throw _host.ExceptSchemaMismatch(nameof(inputSchema), "input", _featureColumnNames[i], expected,
                        inputSchema[_featureColumnNames[i]].Type.ToString());
                }
            }
        }

        /// <summary>
        /// Returns the schema of <see cref="Transform"/>'s output for data of schema <paramref name="inputSchema"/>:
        /// the episode id, the start step and the window column.
        /// </summary>
        public DataViewSchema GetOutputSchema(DataViewSchema inputSchema)
        {
            _host.CheckValue(inputSchema, nameof(inputSchema));
            CheckFittedInput(inputSchema);
            var episode = inputSchema[EpisodeColumnName];
            var builder = new DataViewSchema.Builder();
            builder.AddColumn(EpisodeColumnName, episode.Type, episode.Annotations);
            builder.AddColumn(StartStepColumnName, NumberDataViewType.Int32);
            builder.AddColumn(OutputColumnName, new VectorDataViewType(NumberDataViewType.Single, Horizon * TransitionDimension));
            if (LabelColumnName is not null)
                builder.AddColumn(LabelColumnName, BooleanDataViewType.Instance);
            return builder.ToSchema();
        }

        /// <summary>
        /// Returns a lazy view of the windows of <paramref name="input"/>; the input is read when the view is
        /// enumerated, once per cursor. Data errors (NaN, reappearing episode) surface while enumerating.
        /// </summary>
        public IDataView Transform(IDataView input)
        {
            _host.CheckValue(input, nameof(input));
            var schema = GetOutputSchema(input.Schema);
            return new TrajectoryWindowDataView(_host, this, input, schema);
        }

        /// <summary>Not supported: windows change the number of rows, so there is no row-to-row mapper.</summary>
        public IRowToRowMapper GetRowToRowMapper(DataViewSchema inputSchema)
            => throw _host.ExceptNotSupp("TrajectoryWindowTransformer changes the number of rows: it has no row-to-row mapper. Use Transform.");

        void ICanSaveModel.Save(ModelSaveContext ctx)
        {
            _host.CheckValue(ctx, nameof(ctx));
            ctx.CheckAtModel();
            ctx.SetVersionInfo(GetVersionInfo());

            // *** Binary format ***
            // int: horizon
            // int: stride
            // int: short-episode handling (0 = Skip, 1 = PadWithLast)
            // int: invalid-value handling (0 = Error, 1 = SkipWindow)
            // int: id of episode column name
            // int: id of start-step column name
            // int: id of output column name
            // int: number of feature columns
            // for each feature column:
            //   int: id of column name
            //   int: values per step (1 for a scalar)
            // byte: 1 if there is an episode label column, then int: id of its name (since format 1.2)
            // byte: 1 if episode ends are padded (since format 1.3)
            // int: number of zero-padded feature columns, then for each: int: id of its name (since format 1.3)
            // int: extra end steps (since format 1.3)
            ctx.Writer.Write(Horizon);
            ctx.Writer.Write(Stride);
            ctx.Writer.Write((int)ShortEpisodes);
            ctx.Writer.Write((int)InvalidValues);
            ctx.SaveNonEmptyString(EpisodeColumnName);
            ctx.SaveNonEmptyString(StartStepColumnName);
            ctx.SaveNonEmptyString(OutputColumnName);
            ctx.Writer.Write(_featureColumnNames.Length);
            for (int i = 0; i < _featureColumnNames.Length; i++)
            {
                ctx.SaveNonEmptyString(_featureColumnNames[i]);
                ctx.Writer.Write(_featureSizes[i]);
            }
            ctx.Writer.Write((byte)(LabelColumnName is not null ? 1 : 0));
            if (LabelColumnName is not null)
                ctx.SaveNonEmptyString(LabelColumnName);
            ctx.Writer.Write((byte)(PadEpisodeEnds ? 1 : 0));
            ctx.Writer.Write(_zeroPaddedColumnNames.Length);
            foreach (var name in _zeroPaddedColumnNames)
                ctx.SaveNonEmptyString(name);
            ctx.Writer.Write(ExtraEndSteps);
        }

        private static bool ReadFlag(IHost host, BinaryReader reader)
        {
            byte flag = reader.ReadByte();
            host.CheckDecode(flag <= 1);
            return flag == 1;
        }

        // Factory method for SignatureLoadModel.
        private static TrajectoryWindowTransformer Create(IHostEnvironment env, ModelLoadContext ctx)
        {
            Contracts.CheckValue(env, nameof(env));
            var host = env.Register(nameof(TrajectoryWindowTransformer));
            host.CheckValue(ctx, nameof(ctx));
            ctx.CheckAtModel(GetVersionInfo());

            // *** Binary format ***
            // See ICanSaveModel.Save.
            int horizon = ctx.Reader.ReadInt32();
            host.CheckDecode(horizon >= 1);
            int stride = ctx.Reader.ReadInt32();
            host.CheckDecode(stride >= 1);
            int shortEpisodes = ctx.Reader.ReadInt32();
            host.CheckDecode(Enum.IsDefined((ShortEpisodeHandling)shortEpisodes));
            int invalidValues = ctx.Reader.ReadInt32();
            host.CheckDecode(Enum.IsDefined((InvalidValueHandling)invalidValues));
            string episodeColumnName = ctx.LoadNonEmptyString();
            string startStepColumnName = ctx.LoadNonEmptyString();
            string outputColumnName = ctx.LoadNonEmptyString();
            int count = ctx.Reader.ReadInt32();
            host.CheckDecode(count >= 1);
            var names = new string[count];
            var sizes = new int[count];
            for (int i = 0; i < count; i++)
            {
                names[i] = ctx.LoadNonEmptyString();
                sizes[i] = ctx.Reader.ReadInt32();
                host.CheckDecode(sizes[i] >= 1);
            }
            string? label = ctx.Header.ModelVerWritten >= 0x00010002 && ReadFlag(host, ctx.Reader) ? ctx.LoadNonEmptyString() : null;
            bool padEnds = false;
            var zeroPadded = Array.Empty<string>();
            int extraEndSteps = 0;
            if (ctx.Header.ModelVerWritten >= 0x00010003)
            {
                padEnds = ReadFlag(host, ctx.Reader);
                int zeroCount = ctx.Reader.ReadInt32();
                host.CheckDecode(zeroCount >= 0 && zeroCount <= count);
                zeroPadded = new string[zeroCount];
                for (int i = 0; i < zeroCount; i++)
                    zeroPadded[i] = ctx.LoadNonEmptyString();
                extraEndSteps = ctx.Reader.ReadInt32();
                host.CheckDecode(extraEndSteps >= 0 && (padEnds || extraEndSteps == 0));
            }
            return new TrajectoryWindowTransformer(env, outputColumnName, episodeColumnName, startStepColumnName, names, sizes,
                horizon, stride, (ShortEpisodeHandling)shortEpisodes, (InvalidValueHandling)invalidValues, label, padEnds, zeroPadded, extraEndSteps);
        }
    }
}
