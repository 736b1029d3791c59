namespace Microsoft.ML.RewardExtraction
{
    public sealed partial class RewardExtractionCatalog
    {
        /// <summary>
        /// Creates a <see cref="TrajectoryWindowEstimator"/>, which cuts per-step transition rows into windows of
        /// <paramref name="horizon"/> consecutive steps of one episode (one output row per window).
        /// </summary>
        /// <param name="outputColumnName">Name of the window column: a vector of <paramref name="horizon"/> x D floats,
        /// row-major by time, where D is the total size of the feature columns.</param>
        /// <param name="episodeColumnName">Name of the column identifying each row's episode (integer, key or text).
        /// Rows of one episode must be consecutive and in time order.</param>
        /// <param name="featureColumnNames">The feature columns (<see cref="float"/> or known-size vectors of
        /// <see cref="float"/>), concatenated in this order at each step, e.g. actions then observations.</param>
        /// <param name="horizon">Steps per window, at least 1.</param>
        /// <param name="stride">Steps between the starts of consecutive windows of an episode, at least 1.</param>
        /// <returns>The estimator. Episodes shorter than <paramref name="horizon"/> are skipped and NaN or infinite
        /// values are errors; use the <see cref="TrajectoryWindowEstimator.Options"/> overload to change that.</returns>
        /// <example>
        /// <code>
        /// var windows = mlContext.RewardExtraction()
        ///     .TrajectoryWindows("Trajectory", "Episode", new[] { "Action", "Observation" }, horizon: 16)
        ///     .Fit(steps).Transform(steps);
        /// </code>
        /// </example>
        public TrajectoryWindowEstimator TrajectoryWindows(string outputColumnName, string episodeColumnName,
            string[] featureColumnNames, int horizon, int stride = 1)
            => new TrajectoryWindowEstimator(Environment, new TrajectoryWindowEstimator.Options
            {
                OutputColumnName = outputColumnName,
                EpisodeColumnName = episodeColumnName,
                FeatureColumnNames = featureColumnNames,
                Horizon = horizon,
                Stride = stride,
            });

        /// <summary>
        /// Creates a <see cref="TrajectoryWindowEstimator"/> with all settings, see <see cref="TrajectoryWindowEstimator.Options"/>.
        /// </summary>
        /// <param name="options">The settings; copied, later changes to it have no effect.</param>
        /// <returns>The estimator.</returns>
        public TrajectoryWindowEstimator TrajectoryWindows(TrajectoryWindowEstimator.Options options)
            => new TrajectoryWindowEstimator(Environment, options);
    }
}
