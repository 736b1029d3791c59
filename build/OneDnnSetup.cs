// Compiled into every test project that runs libtorch (Directory.Build.targets): oneDNN picks its kernels when libtorch
// loads, so the library's workaround (Microsoft.ML.RewardExtraction.OneDnnWorkaround) must run before the first torch call,
// which in a test host is inside some test. A module initializer runs before any code of the test assembly.
internal static class OneDnnSetup
{
#pragma warning disable CA2255
    [System.Runtime.CompilerServices.ModuleInitializer]
#pragma warning restore CA2255
    internal static void Apply() => Microsoft.ML.RewardExtraction.OneDnnWorkaround.Apply();
}
