namespace MLReward.Locomotion.Tests;

internal static class RequireMuJoCo
{
    /// <summary>Skips the calling [SkippableFact] with the install instructions when MuJoCo 2.2.2 is absent.</summary>
    public static void OrSkip() =>
        Skip.IfNot(MuJoCo.IsAvailable, MuJoCo.UnavailableReason);
}
