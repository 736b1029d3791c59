using Microsoft.ML.RewardExtraction;
using Microsoft.ML.Runtime;

namespace Microsoft.ML
{
    /// <summary>
    /// The entry point of MLReward in ML.NET: <c>mlContext.RewardExtraction()</c>.
    /// </summary>
    public static class RewardExtractionCatalogExtensions
    {
        /// <summary>
        /// Returns the catalog of MLReward's estimators (trajectory windows, diffusion models, relative reward,
        /// guided sampling) bound to <paramref name="ctx"/>.
        /// </summary>
        /// <param name="ctx">The ML.NET context.</param>
        /// <returns>The catalog.</returns>
        public static RewardExtractionCatalog RewardExtraction(this MLContext ctx)
        {
            Contracts.CheckValue(ctx, nameof(ctx));
            return new RewardExtractionCatalog(ctx);
        }
    }
}

namespace Microsoft.ML.RewardExtraction
{
    /// <summary>
    /// MLReward's estimators, obtained with <c>mlContext.RewardExtraction()</c>.
    /// </summary>
    public sealed partial class RewardExtractionCatalog
    {
        /// <summary>The environment (usually the <see cref="MLContext"/>) the estimators are created in.</summary>
        internal IHostEnvironment Environment { get; }

        internal RewardExtractionCatalog(IHostEnvironment env)
        {
            Contracts.CheckValue(env, nameof(env));
            Environment = env;
        }
    }
}
