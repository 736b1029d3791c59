using System.Globalization;
using System.Reflection;
using MLReward.Experiments.Maze2D;

namespace MLReward.Cli;

/// <summary>Applies <c>--set Name=Value</c> overrides to a preset's <see cref="Maze2DSettings"/> (property names as in the class,
/// case-insensitive; arrays as comma-separated lists).</summary>
internal static class SettingsOverrides
{
    public static Maze2DSettings Apply(Maze2DSettings settings, IEnumerable<string> assignments)
    {
        var result = settings with { };
        foreach (var assignment in assignments)
        {
            int eq = assignment.IndexOf('=');
            if (eq <= 0)
                throw new ArgumentException($"'--set {assignment}' is not of the form Name=Value.");
            string name = assignment[..eq].Trim(), text = assignment[(eq + 1)..].Trim();
            var property = typeof(Maze2DSettings).GetProperty(name, BindingFlags.Public | BindingFlags.Instance | BindingFlags.IgnoreCase)
                ?? throw new ArgumentException($"Unknown setting '{name}'. Settings: {string.Join(", ", Names)}.");
            if (!property.CanWrite || property.Name == nameof(Maze2DSettings.Name))
                throw new ArgumentException($"Setting '{property.Name}' cannot be changed.");
            property.SetValue(result, Parse(property.PropertyType, text, property.Name));
        }
        return result;
    }

    public static IEnumerable<string> Names => typeof(Maze2DSettings).GetProperties(BindingFlags.Public | BindingFlags.Instance)
        .Where(p => p.CanWrite && p.Name != nameof(Maze2DSettings.Name)).Select(p => p.Name);

    private static object Parse(Type type, string text, string name)
    {
        var c = CultureInfo.InvariantCulture;
        try
        {
            if (type == typeof(int)) return int.Parse(text, NumberStyles.Integer, c);
            if (type == typeof(double)) return double.Parse(text, NumberStyles.Float, c);
            if (type == typeof(bool)) return bool.Parse(text);
            if (type == typeof(int[])) return text.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Select(v => int.Parse(v, NumberStyles.Integer, c)).ToArray();
            if (type == typeof(string)) return text;
            if (type.IsEnum) return Enum.Parse(type, text, ignoreCase: true);
        }
        catch (Exception e) when (e is FormatException or ArgumentException or OverflowException)
        {
            throw new ArgumentException($"'{text}' is not a valid value of setting {name} ({type.Name}): {e.Message}");
        }
        throw new ArgumentException($"Setting {name} of type {type.Name} cannot be set from the command line.");
    }
}
