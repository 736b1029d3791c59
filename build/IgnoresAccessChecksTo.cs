// Compiled into every project that sets <PublicizeMLNet>true</PublicizeMLNet> (see PublicizeMLNet.targets).
// Such a project compiles against publicized copies of Microsoft.ML.Core and Microsoft.ML.Data; at run time the
// real assemblies load, and CoreCLR lets this assembly reach their non-public members because of these lines.
// Each such assembly defines its own internal copy of the attribute; where one of them sees another's through
// InternalsVisibleTo the compiler warns about the duplicate (CS0436) and uses this one, which is what we want.
#pragma warning disable CS0436
[assembly: System.Runtime.CompilerServices.IgnoresAccessChecksTo("Microsoft.ML.Core")]
[assembly: System.Runtime.CompilerServices.IgnoresAccessChecksTo("Microsoft.ML.Data")]
#pragma warning restore CS0436

namespace System.Runtime.CompilerServices
{
    /// <summary>
    /// Tells the runtime that this assembly may access non-public members of the named assembly.
    /// Recognised by CoreCLR by its full name; no public framework type declares it.
    /// </summary>
    [AttributeUsage(AttributeTargets.Assembly, AllowMultiple = true)]
    internal sealed class IgnoresAccessChecksToAttribute : Attribute
    {
        /// <summary>Grants access to the non-public members of <paramref name="assemblyName"/>.</summary>
        /// <param name="assemblyName">The simple name of the assembly whose access checks are ignored.</param>
        public IgnoresAccessChecksToAttribute(string assemblyName) => AssemblyName = assemblyName;

        /// <summary>The simple name of the assembly whose access checks are ignored.</summary>
        public string AssemblyName { get; }
    }
}
