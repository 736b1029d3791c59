using System.Globalization;
using System.Reflection;
using System.Text.Json;

namespace MLReward.Cli;

/// <summary>
/// Applies <c>--set Name=Value</c> overrides to a copy of an experiment's settings record: the property's name as in the class
/// (any case) or as report.json prints it (snake_case); numbers, booleans, enums by name, strings, and arrays as
/// comma-separated lists. Labels that are not settings (<paramref name="fixedNames"/>) cannot be set.
/// </summary>
internal static class SettingsOverrides
{
    public static T Apply<T>(T settings, IEnumerable<string> assignments, params string[] fixedNames) where T : class
    {
        // A copy through the record's own clone ("with { }" is not available on a type parameter).
        var result = (T)typeof(T).GetMethod("<Clone>$")!.Invoke(settings, null)!;
        foreach (var assignment in assignments)
        {
            int eq = assignment.IndexOf('=');
            if (eq <= 0)
                throw new ArgumentException($"'--set {assignment}' is not of the form Name=Value.");
            string name = assignment[..eq].Trim(), text = assignment[(eq + 1)..].Trim();
            var property = Settable<T>(fixedNames).FirstOrDefault(p => Matches(p, name))
                ?? throw new ArgumentException(typeof(T).GetProperty(name, BindingFlags.Public | BindingFlags.Instance | BindingFlags.IgnoreCase) is { } p
                    ? $"Setting '{p.Name}' cannot be changed with --set."
                    : $"Unknown setting '{name}'. Settings: {string.Join(", ", Names<T>(fixedNames))}.");
            property.SetValue(result, Parse(property.PropertyType, text, property.Name));
        }
        return result;
    }

    /// <summary>The names --set accepts for <typeparamref name="T"/>.</summary>
    public static IEnumerable<string> Names<T>(params string[] fixedNames) => Settable<T>(fixedNames).Select(p => p.Name);

    private static IEnumerable<PropertyInfo> Settable<T>(string[] fixedNames) => typeof(T).GetProperties(BindingFlags.Public | BindingFlags.Instance)
        .Where(p => p.CanWrite && !fixedNames.Contains(p.Name) && p.PropertyType != typeof(Type));

    private static bool Matches(PropertyInfo property, string name) =>
        string.Equals(property.Name, name, StringComparison.OrdinalIgnoreCase)
        || string.Equals(JsonNamingPolicy.SnakeCaseLower.ConvertName(property.Name), name, StringComparison.OrdinalIgnoreCase);

    private static object Parse(Type type, string text, string name)
    {
        var c = CultureInfo.InvariantCulture;
        string[] Items() => text.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        try
        {
            if (type == typeof(int)) return int.Parse(text, NumberStyles.Integer, c);
            if (type == typeof(double)) return double.Parse(text, NumberStyles.Float, c);
            if (type == typeof(bool)) return bool.Parse(text);
            if (type == typeof(string)) return text;
            if (type.IsEnum) return Enum.Parse(type, text, ignoreCase: true);
            if (type == typeof(int[])) return Items().Select(v => int.Parse(v, NumberStyles.Integer, c)).ToArray();
            if (type == typeof(double[])) return Items().Select(v => double.Parse(v, NumberStyles.Float, c)).ToArray();
            if (type == typeof(string[])) return Items();
        }
        catch (Exception e) when (e is FormatException or ArgumentException or OverflowException)
        {
            throw new ArgumentException($"'{text}' is not a valid value of {name} ({type.Name}): {e.Message}");
        }
        throw new ArgumentException($"Setting {name} of type {type.Name} cannot be set from the command line.");
    }
}
