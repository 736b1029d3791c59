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
        /// <summary>The environment the estimators are created in: the <see cref="MLContext"/>.</summary>
        internal IHostEnvironment Environment => Context;

        /// <summary>The context, whose data catalog and transforms the one-call estimator and the split helper use.</summary>
        internal MLContext Context { get; }

        internal RewardExtractionCatalog(MLContext context)
        {
            Contracts.CheckValue(context, nameof(context));
            Context = context;
        }
    }
}
