// torch's default generator is process-wide: module constructors and unseeded randn draw from it. TorchRandom.Initialize
// serialises seeded initialisations among themselves, but a test class running alongside that builds a module or calls
// randn directly would draw between a seed and the initialisation it belongs to (seen in CI: CreateIsSeeded failed once).
// The classes here therefore run one after another.
[assembly: Xunit.CollectionBehavior(DisableTestParallelization = true)]
