namespace Microsoft.ML.RewardExtraction;

/// <summary>
/// Marks a backward pass that asks only for the gradient of a network's output with respect to its input, such as the
/// reward objective's d r / d u with create_graph. A custom autograd function cannot learn from TorchSharp which of its
/// gradients the engine needs, so inside this scope the project's functions skip their parameter gradients, which the
/// engine would discard. Per thread, as libtorch runs a CPU backward on the calling thread.
/// </summary>
internal static class InputGradientPass
{
    [ThreadStatic] private static int t_depth;

    /// <summary>Whether the current thread is inside an input-gradient pass.</summary>
    public static bool Active => t_depth > 0;

    /// <summary>Enters the pass until the returned scope is disposed.</summary>
    public static Scope Enter()
    {
        t_depth++;
        return new Scope();
    }

    /// <summary>Leaves the pass on dispose.</summary>
    public readonly struct Scope : IDisposable
    {
        public void Dispose() => t_depth--;
    }
}
