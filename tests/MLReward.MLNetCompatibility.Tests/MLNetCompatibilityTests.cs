using Mono.Cecil;
using Xunit.Abstractions;

namespace MLReward.MLNetCompatibility.Tests;

/// <summary>
/// The packages are compiled against Microsoft.ML 5.0.1, partly against its internals (build/PublicizeMLNet.targets),
/// and declare Microsoft.ML [5.0.1, 7.0.0). A member that is missing or has another signature in a version of that
/// range fails only at run time (MissingMethodException, TypeLoadException). These tests read the compiled libraries
/// with Mono.Cecil and resolve every type and member they take from an ML.NET assembly, and every abstract or
/// interface member their own types must implement, against the assemblies of each end of the range in the NuGet
/// cache (PackageDownload in the project file puts them there).
/// </summary>
public class MLNetCompatibilityTests(ITestOutputHelper output)
{
    /// <summary>The Microsoft.ML versions the packages' dependency range was checked on.</summary>
    public static TheoryData<string> Versions => new() { "5.0.1", "6.0.0" };

    /// <summary>The NuGet packages that hold ML.NET's assemblies (Microsoft.ML depends on the other two; reward distillation's
    /// learners are FastTree and LightGbm).</summary>
    private static readonly string[] Packages = ["microsoft.ml", "microsoft.ml.dataview", "microsoft.ml.cpumath", "microsoft.ml.fasttree", "microsoft.ml.lightgbm"];

    /// <summary>The packed libraries, as built beside this test.</summary>
    private static readonly string[] Libraries =
        ["Microsoft.ML.RewardExtraction.dll", "Microsoft.ML.RewardExtraction.Transforms.dll", "Microsoft.ML.RewardExtraction.Estimators.dll"];

    [Theory]
    [MemberData(nameof(Versions))]
    public void EveryMLNetTypeAndMemberTheLibrariesUse_ExistsWithTheSameSignature(string version)
    {
        var missing = new List<string>();
        int types = 0, members = 0, nonPublic = 0;
        foreach (var (library, module) in Read(version))
        {
            foreach (var type in module.GetTypeReferences().Where(IsMLNet))
            {
                types++;
                var resolved = type.Resolve();
                if (resolved is null) missing.Add($"{library}: type {type.FullName}");
                else if (!resolved.IsPublic && !resolved.IsNestedPublic) nonPublic++;
            }
            foreach (var member in module.GetMemberReferences().Where(m => IsMLNet(m.DeclaringType)))
            {
                members++;
                var resolved = member.Resolve();   // matches name, parameter and return types, generic arity
                if (resolved is null) missing.Add($"{library}: member {member.FullName}");
                else if (!IsPublic(resolved)) nonPublic++;
            }
        }
        output.WriteLine($"Microsoft.ML {version}: {types} types and {members} members referenced, {nonPublic} of them not public, {missing.Count} missing");
        // Guards against a check that silently reads nothing: the persistence layer uses a few hundred of each.
        Assert.True(types > 50 && members > 100, $"too few references found ({types} types, {members} members)");
        Assert.True(nonPublic > 10, $"only {nonPublic} non-public references: are the publicized copies still used?");
        Assert.Empty(missing);
    }

    [Theory]
    [MemberData(nameof(Versions))]
    public void EveryAbstractAndInterfaceMemberOfTheMLNetBaseTypes_IsImplemented(string version)
    {
        var unimplemented = new List<string>();
        int checkedTypes = 0;
        foreach (var (library, module) in Read(version))
        {
            foreach (var type in module.GetTypes().Where(t => t.IsClass && !t.IsAbstract && !t.IsInterface))
            {
                var chain = BaseChain(type).ToList();
                if (!chain.Skip(1).Any(IsMLNet) && !Interfaces(chain).Any(IsMLNet)) continue;
                checkedTypes++;
                foreach (var required in Required(chain))
                {
                    if (!chain.Any(t => t.Methods.Any(m => Implements(m, required))))
                        unimplemented.Add($"{library}: {type.FullName} lacks {required.FullName}");
                }
            }
        }
        output.WriteLine($"Microsoft.ML {version}: {checkedTypes} types derive from or implement ML.NET types, {unimplemented.Count} lack a member");
        Assert.True(checkedTypes > 10, $"only {checkedTypes} types checked");
        Assert.Empty(unimplemented);
    }

    [Fact]
    public void TheCheck_FindsARenamedMember_AndAChangedSignature()
    {
        // A non-public ML.NET method the persistence layer calls, as referenced from Transforms.
        var module = Read("5.0.1").Single(m => m.Library == "Microsoft.ML.RewardExtraction.Transforms.dll").Module;
        var used = module.GetMemberReferences().OfType<MethodReference>()
            .First(m => IsMLNet(m.DeclaringType) && m.Parameters.Count > 0 && m.Resolve() is { } d && !IsPublic(d));
        output.WriteLine($"altering {used.FullName}");

        MethodReference Copy(string name, TypeReference firstParameter)
        {
            var copy = new MethodReference(name, used.ReturnType, used.DeclaringType) { HasThis = used.HasThis, ExplicitThis = used.ExplicitThis };
            copy.Parameters.Add(new ParameterDefinition(firstParameter));
            foreach (var p in used.Parameters.Skip(1)) copy.Parameters.Add(new ParameterDefinition(p.ParameterType));
            return copy;
        }
        Assert.NotNull(Copy(used.Name, used.Parameters[0].ParameterType).Resolve());   // the copy itself resolves
        Assert.Null(Copy(used.Name + "Renamed", used.Parameters[0].ParameterType).Resolve());
        Assert.Null(Copy(used.Name, module.TypeSystem.Byte).Resolve());
    }

    [Fact]
    public void TheLibraries_KeepAssemblyVersion1_SoThatSavedModelZipsLoadWithLaterReleases()
    {
        foreach (string library in Libraries)
        {
            var name = System.Reflection.AssemblyName.GetAssemblyName(Path.Combine(AppContext.BaseDirectory, library));
            Assert.Equal(new Version(1, 0, 0, 0), name.Version);
        }
    }

    // ----- reading -----

    /// <summary>The three libraries, each read with a resolver that finds ML.NET in <paramref name="version"/> only.</summary>
    private static IEnumerable<(string Library, ModuleDefinition Module)> Read(string version)
    {
        string cache = Environment.GetEnvironmentVariable("NUGET_PACKAGES")
            ?? Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".nuget", "packages");
        var folders = Packages.Select(p => Path.Combine(cache, p, version, "lib", "netstandard2.0")).ToList();
        foreach (var folder in folders)
            Assert.True(Directory.Exists(folder), $"{folder} is missing: restore this project (PackageDownload) first");

        var resolver = new VersionResolver(folders, AppContext.BaseDirectory);
        foreach (string library in Libraries)
        {
            var module = ModuleDefinition.ReadModule(Path.Combine(AppContext.BaseDirectory, library),
                new ReaderParameters { AssemblyResolver = resolver });
            yield return (library, module);
        }
    }

    /// <summary>
    /// Finds Microsoft.ML.* assemblies in the given version's folders only, whatever version the reference names (ML.NET
    /// keeps assembly version 1.0.0.0); anything else in this test's output folder or the shared framework.
    /// </summary>
    private sealed class VersionResolver : DefaultAssemblyResolver
    {
        private readonly IReadOnlyList<string> _mlnetFolders;
        private readonly Dictionary<string, AssemblyDefinition> _mlnet = new();

        public VersionResolver(IReadOnlyList<string> mlnetFolders, string outputFolder)
        {
            _mlnetFolders = mlnetFolders;
            // The rest: this test's output (TorchSharp, our own libraries), then the shared framework.
            AddSearchDirectory(outputFolder);
            AddSearchDirectory(Path.GetDirectoryName(typeof(object).Assembly.Location)!);
        }

        public override AssemblyDefinition Resolve(AssemblyNameReference name)
        {
            if (!IsMLNetAssembly(name.Name)) return base.Resolve(name);
            if (!_mlnet.TryGetValue(name.Name, out var assembly))
            {
                string? file = _mlnetFolders.Select(f => Path.Combine(f, name.Name + ".dll")).FirstOrDefault(File.Exists);
                Assert.True(file is not null, $"{name.Name}.dll is not in {string.Join(", ", _mlnetFolders)}");
                _mlnet[name.Name] = assembly = AssemblyDefinition.ReadAssembly(file, new ReaderParameters { AssemblyResolver = this });
            }
            return assembly;
        }
    }

    // ----- what counts as ML.NET, public, implemented -----

    private static bool IsMLNet(TypeReference type)
    {
        while (type is TypeSpecification spec) type = spec.ElementType;   // arrays, generic instances, by-refs
        string scope = type.Scope switch
        {
            AssemblyNameReference a => a.Name,
            ModuleDefinition m => m.Assembly.Name.Name,
            _ => "",
        };
        return IsMLNetAssembly(scope);
    }

    private static bool IsMLNetAssembly(string name) =>
        (name == "Microsoft.ML" || name.StartsWith("Microsoft.ML.", StringComparison.Ordinal))
        && !name.StartsWith("Microsoft.ML.RewardExtraction", StringComparison.Ordinal);

    private static bool IsPublic(IMemberDefinition member) => member switch
    {
        MethodDefinition m => m.IsPublic && m.DeclaringType.IsPublic,
        FieldDefinition f => f.IsPublic && f.DeclaringType.IsPublic,
        _ => true,
    };

    /// <summary>The type, then its base types as resolved (ML.NET ones from the version under test).</summary>
    private static IEnumerable<TypeDefinition> BaseChain(TypeDefinition type)
    {
        for (TypeDefinition? t = type; t is not null; t = t.BaseType?.Resolve())
        {
            Assert.True(t.BaseType is null || t.BaseType.Resolve() is not null, $"base type {t.BaseType?.FullName} of {t.FullName} does not resolve");
            yield return t;
        }
    }

    /// <summary>Every interface of the chain, with the interfaces those extend.</summary>
    private static IEnumerable<TypeDefinition> Interfaces(IEnumerable<TypeDefinition> chain)
    {
        var seen = new HashSet<string>();
        var pending = new Stack<TypeReference>(chain.SelectMany(t => t.Interfaces).Select(i => i.InterfaceType));
        while (pending.Count > 0)
        {
            var definition = pending.Pop().Resolve();
            Assert.NotNull(definition);
            if (!seen.Add(definition.FullName)) continue;
            yield return definition;
            foreach (var inner in definition.Interfaces) pending.Push(inner.InterfaceType);
        }
    }

    /// <summary>Abstract methods of the ML.NET base types and the instance members of ML.NET interfaces without a default body.</summary>
    private static IEnumerable<MethodDefinition> Required(List<TypeDefinition> chain) =>
        chain.Where(IsMLNet).SelectMany(t => t.Methods.Where(m => m.IsAbstract))
            .Concat(Interfaces(chain).Where(IsMLNet).SelectMany(i => i.Methods.Where(m => m.IsAbstract && !m.IsStatic)));

    /// <summary>
    /// Name and arity are compared, not parameter types: generic base types show their parameters as T where the
    /// override has the concrete type. A new abstract member or a changed parameter count is what breaks type loading.
    /// </summary>
    private static bool Implements(MethodDefinition candidate, MethodDefinition required) =>
        !candidate.IsAbstract
        && candidate.Parameters.Count == required.Parameters.Count
        && candidate.GenericParameters.Count == required.GenericParameters.Count
        && (candidate.Name == required.Name
            || candidate.Name.EndsWith("." + required.Name, StringComparison.Ordinal)
            || candidate.Overrides.Any(o => o.Name == required.Name && o.DeclaringType.Name == required.DeclaringType.Name));
}
