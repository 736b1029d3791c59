using Microsoft.ML.Data;
using Microsoft.ML.Internal.Utilities;
using Microsoft.ML.Runtime;

namespace Microsoft.ML.RewardExtraction
{
    /// <summary>
    /// The lazy output of <see cref="TrajectoryWindowTransformer.Transform"/>: each cursor streams the input once,
    /// keeping only the last <c>Horizon</c> steps of the current episode and the set of episode ids already seen.
    /// </summary>
    internal sealed class TrajectoryWindowDataView : IDataView
    {
        private readonly IHost _host;
        private readonly TrajectoryWindowTransformer _parent;
        private readonly IDataView _input;

        public TrajectoryWindowDataView(IHost host, TrajectoryWindowTransformer parent, IDataView input, DataViewSchema schema)
        {
            _host = host;
            _parent = parent;
            _input = input;
            Schema = schema;
        }

        public bool CanShuffle => false;

        public DataViewSchema Schema { get; }

        public long? GetRowCount() => null;

        public DataViewRowCursor GetRowCursor(IEnumerable<DataViewSchema.Column> columnsNeeded, Random? rand = null)
        {
            _host.CheckValue(columnsNeeded, nameof(columnsNeeded));
            var active = new bool[Schema.Count];
            foreach (var column in columnsNeeded)
            {
                _host.CheckParam(column.Index < Schema.Count && Schema[column.Index].Name == column.Name, nameof(columnsNeeded),
                    $"column '{column.Name}' is not a column of this view");
                active[column.Index] = true;
            }
            var episodeType = _input.Schema[_parent.EpisodeColumnName].Type;
            return Utils.MarshalInvoke(_createCursorMethodInfo, this, episodeType.RawType, active);
        }

        public DataViewRowCursor[] GetRowCursorSet(IEnumerable<DataViewSchema.Column> columnsNeeded, int n, Random? rand = null)
            => new[] { GetRowCursor(columnsNeeded, rand) };

        private static readonly FuncInstanceMethodInfo1<TrajectoryWindowDataView, bool[], DataViewRowCursor> _createCursorMethodInfo
            = FuncInstanceMethodInfo1<TrajectoryWindowDataView, bool[], DataViewRowCursor>.Create(target => target.CreateCursor<int>);

        private DataViewRowCursor CreateCursor<TId>(bool[] active) => new Cursor<TId>(this, active);

        private sealed class Cursor<TId> : DataViewRowCursor
        {
            // Output column indices (see TrajectoryWindowTransformer.GetOutputSchema).
            private const int EpisodeCol = 0;
            private const int StartStepCol = 1;
            private const int WindowCol = 2;
            private const int LabelCol = 3;

            private readonly TrajectoryWindowDataView _view;
            private readonly TrajectoryWindowTransformer _parent;
            private readonly IChannel _ch;
            private readonly bool[] _active;
            private readonly DataViewRowCursor _input;
            private readonly ValueGetter<TId> _getId;
            private readonly ValueGetter<bool>? _getLabel;
            private readonly Action<float[], int>[] _readFeatures;
            private readonly IEqualityComparer<TId> _comparer;
            private readonly HashSet<TId> _seen;
            private readonly int _horizon;
            private readonly int _stride;
            private readonly int _dimension;
            private readonly bool _padShort;
            private readonly bool _padEnds;
            private readonly int _extraEndSteps;
            private readonly bool[] _zeroWhenPadded;
            private readonly bool _skipInvalid;

            // The last Horizon steps of the current episode: step s lives at row (s % Horizon).
            private readonly float[] _ring;
            private TId _episode = default!;
            private bool _inEpisode;
            private bool _episodeClosed;
            private int _steps;
            private int _lastInvalidStep;
            private bool _episodeLabel;

            // The next padded window of the episode just closed (its start step), or -1 when none is left.
            private int _nextPaddedStart = -1;
            private int _lastPaddedStart = -1;

            // The input row read ahead: it may start a new episode after the current one's padded window is served.
            private readonly float[] _staged;
            private TId _stagedId = default!;
            private bool _hasStaged;
            private bool _stagedLabel;
            private bool _stagedInvalid;
            private bool _inputDone;

            // The current window.
            private readonly float[] _window;
            private TId _windowEpisode = default!;
            private int _windowStart;
            private bool _windowLabel;
            private long _position = -1;

            public Cursor(TrajectoryWindowDataView view, bool[] active)
            {
                _view = view;
                _parent = view._parent;
                _ch = view._host.Start(nameof(TrajectoryWindowDataView));
                _active = active;
                _horizon = _parent.Horizon;
                _stride = _parent.Stride;
                _dimension = _parent.TransitionDimension;
                _padShort = _parent.ShortEpisodes == ShortEpisodeHandling.PadWithLast;
                _padEnds = _parent.PadEpisodeEnds;
                _extraEndSteps = _parent.ExtraEndSteps;
                _zeroWhenPadded = _parent.ZeroPaddedMask();
                _skipInvalid = _parent.InvalidValues == InvalidValueHandling.SkipWindow;
                _ring = new float[_horizon * _dimension];
                _window = new float[_horizon * _dimension];
                _staged = new float[_dimension];

                var inputSchema = view._input.Schema;
                var episodeColumn = inputSchema[_parent.EpisodeColumnName];
                var featureColumns = _parent.FeatureColumnNames.Select(n => inputSchema[n]).ToArray();
                // Every feature column is read whatever is active: which windows exist must not depend on it.
                var labelColumn = _parent.LabelColumnName is null ? (DataViewSchema.Column?)null : inputSchema[_parent.LabelColumnName];
                var read = featureColumns.Append(episodeColumn);
                _input = view._input.GetRowCursor(labelColumn is { } l ? read.Append(l) : read);
                _getId = _input.GetGetter<TId>(episodeColumn);
                if (labelColumn is { } label)
                    _getLabel = _input.GetGetter<bool>(label);
                _readFeatures = new Action<float[], int>[featureColumns.Length];
                for (int i = 0; i < featureColumns.Length; i++)
                    _readFeatures[i] = MakeFeatureReader(featureColumns[i], _parent.FeatureSizes[i]);

                _comparer = typeof(TId) == typeof(ReadOnlyMemory<char>)
                    ? (IEqualityComparer<TId>)(object)TextComparer.Instance
                    : EqualityComparer<TId>.Default;
                _seen = new HashSet<TId>(_comparer);
            }

            private Action<float[], int> MakeFeatureReader(DataViewSchema.Column column, int size)
            {
                if (column.Type is VectorDataViewType)
                {
                    var getter = _input.GetGetter<VBuffer<float>>(column);
                    VBuffer<float> buffer = default;
                    return (destination, offset) =>
                    {
                        getter(ref buffer);
                        if (buffer.Length != size)
                            throw _ch.Except($"Column '{column.Name}' has a vector of {buffer.Length} values at input row {_input.Position}; its type says {size}.");
                        buffer.CopyTo(destination.AsSpan(offset, size));
                    };
                }
                else
                {
                    var getter = _input.GetGetter<float>(column);
                    float value = 0;
                    return (destination, offset) =>
                    {
                        getter(ref value);
                        destination[offset] = value;
                    };
                }
            }

            public override DataViewSchema Schema => _view.Schema;

            public override long Position => _position;

            public override long Batch => 0;

            public override bool IsColumnActive(DataViewSchema.Column column)
            {
                _ch.Check(column.Index < _active.Length, "Column is not part of this cursor's schema");
                return _active[column.Index];
            }

            public override ValueGetter<DataViewRowId> GetIdGetter()
                => (ref DataViewRowId value) =>
                {
                    _ch.Check(_position >= 0, "The cursor has no current row");
                    value = new DataViewRowId((ulong)_position, 0);
                };

            public override ValueGetter<TValue> GetGetter<TValue>(DataViewSchema.Column column)
            {
                _ch.CheckParam(column.Index < _active.Length && _active[column.Index], nameof(column), "requested column is not active");
                Delegate getter = column.Index switch
                {
                    EpisodeCol => (ValueGetter<TId>)((ref TId value) => { CheckHasRow(); value = _windowEpisode; }),
                    StartStepCol => (ValueGetter<int>)((ref int value) => { CheckHasRow(); value = _windowStart; }),
                    WindowCol => (ValueGetter<VBuffer<float>>)GetWindow,
                    LabelCol => (ValueGetter<bool>)((ref bool value) => { CheckHasRow(); value = _windowLabel; }),
                    _ => throw _ch.ExceptParam(nameof(column), "unknown column"),
                };
                if (getter is not ValueGetter<TValue> typed)
                {
                    throw _ch.Except($"Invalid TValue in GetGetter: '{typeof(TValue)}', " +
                        $"expected type: '{column.Type.RawType}'.");
                }
                return typed;
            }

            private void GetWindow(ref VBuffer<float> value)
            {
                CheckHasRow();
                var editor = VBufferEditor.Create(ref value, _window.Length);
                _window.AsSpan().CopyTo(editor.Values);
                value = editor.Commit();
            }

            private void CheckHasRow() => _ch.Check(_position >= 0 && !_inputDoneAndServed, "The cursor has no current row");

            private bool _inputDoneAndServed;

            public override bool MoveNext()
            {
                if (_inputDoneAndServed)
                    return false;
                if (NextWindow())
                {
                    _position++;
                    return true;
                }
                _inputDoneAndServed = true;
                return false;
            }

            private bool NextWindow()
            {
                while (true)
                {
                    if (_nextPaddedStart >= 0)
                    {
                        ServePaddedWindow();
                        return true;
                    }

                    if (!_hasStaged)
                    {
                        if (!_inputDone && _input.MoveNext())
                        {
                            Stage();
                        }
                        else
                        {
                            _inputDone = true;
                            // End of input closes the last episode.
                            if (_inEpisode && !_episodeClosed)
                            {
                                CloseEpisode();
                                continue;
                            }
                            return false;
                        }
                    }

                    if (!_inEpisode || !_comparer.Equals(_stagedId, _episode))
                    {
                        // The staged row starts a new episode: first serve the padded windows of the one just closed.
                        if (_inEpisode && !_episodeClosed)
                        {
                            CloseEpisode();
                            continue;
                        }
                        StartEpisode();
                    }

                    if (_getLabel is not null && _stagedLabel != _episodeLabel)
                    {
                        throw _ch.Except($"Column '{_parent.LabelColumnName}' changes within episode '{_episode}' at input row {_input.Position} " +
                            $"(from {_episodeLabel} to {_stagedLabel}); a label column must be constant over each episode.");
                    }
                    // Append the staged row as the episode's next step.
                    Array.Copy(_staged, 0, _ring, (_steps % _horizon) * _dimension, _dimension);
                    if (_stagedInvalid)
                        _lastInvalidStep = _steps;
                    _steps++;
                    _hasStaged = false;

                    int start = _steps - _horizon;
                    if (start >= 0 && start % _stride == 0 && _lastInvalidStep < start)
                    {
                        for (int k = 0; k < _horizon; k++)
                            Array.Copy(_ring, ((start + k) % _horizon) * _dimension, _window, k * _dimension, _dimension);
                        _windowEpisode = _episode;
                        _windowStart = start;
                        _windowLabel = _episodeLabel;
                        return true;
                    }
                }
            }

            private void StartEpisode()
            {
                TId id = Copy(_stagedId);
                if (!_seen.Add(id))
                {
                    throw _ch.Except(
                        $"Episode '{id}' reappears at input row {_input.Position} after rows of another episode. " +
                        $"The rows of each episode must be consecutive: group the input by '{_parent.EpisodeColumnName}' first.");
                }
                _episode = id;
                _episodeLabel = _stagedLabel;
                _inEpisode = true;
                _episodeClosed = false;
                _steps = 0;
                _lastInvalidStep = -1;
            }

            /// <summary>
            /// Marks the current episode closed and finds its first padded window: with <see cref="TrajectoryWindowTransformer.PadEpisodeEnds"/>
            /// every stride start after the last full window, up to the episode's last step plus
            /// <see cref="TrajectoryWindowTransformer.ExtraEndSteps"/>; otherwise, with
            /// <see cref="ShortEpisodeHandling.PadWithLast"/>, start 0 of an episode shorter than the horizon. A window never
            /// contains an invalid step.
            /// </summary>
            private void CloseEpisode()
            {
                _episodeClosed = true;
                _nextPaddedStart = -1;
                if (_steps == 0)
                    return;
                int first;
                if (_padEnds)
                {
                    first = Math.Max(Math.Max(0, _steps - _horizon + 1), _lastInvalidStep + 1);
                    first = (first + _stride - 1) / _stride * _stride;
                    _lastPaddedStart = _steps - 1 + _extraEndSteps;
                }
                else if (_padShort && _steps < _horizon && _lastInvalidStep < 0)
                {
                    first = 0;
                    _lastPaddedStart = 0;
                }
                else
                {
                    return;
                }
                if (first <= _lastPaddedStart)
                    _nextPaddedStart = first;
            }

            /// <summary>
            /// Makes the window starting at <see cref="_nextPaddedStart"/> current: the episode's steps from there, then
            /// copies of its last step (zero in the columns of <see cref="TrajectoryWindowTransformer.ZeroPaddedColumnNames"/>).
            /// </summary>
            private void ServePaddedWindow()
            {
                int start = _nextPaddedStart;
                // Every step from start on is among the ring's last Horizon steps, because start > _steps - Horizon.
                for (int k = 0; k < _horizon; k++)
                {
                    int step = Math.Min(start + k, _steps - 1);
                    Array.Copy(_ring, (step % _horizon) * _dimension, _window, k * _dimension, _dimension);
                    if (start + k >= _steps)
                    {
                        for (int j = 0; j < _dimension; j++)
                        {
                            if (_zeroWhenPadded[j])
                                _window[k * _dimension + j] = 0;
                        }
                    }
                }
                _windowEpisode = _episode;
                _windowStart = start;
                _windowLabel = _episodeLabel;
                _nextPaddedStart = start + _stride <= _lastPaddedStart ? start + _stride : -1;
            }

            /// <summary>Copies the current input row into the staging area and checks its values.</summary>
            private void Stage()
            {
                _getId(ref _stagedId);
                _getLabel?.Invoke(ref _stagedLabel);
                bool invalid = false;
                int offset = 0;
                for (int i = 0; i < _readFeatures.Length; i++)
                {
                    int size = _parent.FeatureSizes[i];
                    _readFeatures[i](_staged, offset);
                    for (int j = 0; j < size; j++)
                    {
                        float value = _staged[offset + j];
                        if (float.IsFinite(value))
                            continue;
                        if (_skipInvalid)
                        {
                            invalid = true;
                            break;
                        }
                        string slot = size == 1 && _view._input.Schema[_parent.FeatureColumnNames[i]].Type is not VectorDataViewType
                            ? "" : $", slot {j}";
                        throw _ch.Except(
                            $"Column '{_parent.FeatureColumnNames[i]}' has the non-finite value {value} at input row {_input.Position} " +
                            $"(episode '{_stagedId}'{slot}). Set InvalidValues = SkipWindow to drop the windows that contain such steps.");
                    }
                    offset += size;
                }
                _stagedInvalid = invalid;
                _hasStaged = true;
            }

            private static TId Copy(TId id)
            {
                // Text ids may point into buffers the input reuses: keep a private copy.
                if (id is ReadOnlyMemory<char> text)
                    return (TId)(object)text.ToString().AsMemory();
                return id;
            }

            private bool _disposed;

            protected override void Dispose(bool disposing)
            {
                if (disposing && !_disposed)
                {
                    _disposed = true;
                    _input.Dispose();
                    _ch.Dispose();
                }
                base.Dispose(disposing);
            }
        }

        /// <summary>Compares text episode ids by content.</summary>
        private sealed class TextComparer : IEqualityComparer<ReadOnlyMemory<char>>
        {
            public static readonly TextComparer Instance = new();
            public bool Equals(ReadOnlyMemory<char> x, ReadOnlyMemory<char> y) => x.Span.SequenceEqual(y.Span);
            public int GetHashCode(ReadOnlyMemory<char> obj) => string.GetHashCode(obj.Span);
        }
    }
}
