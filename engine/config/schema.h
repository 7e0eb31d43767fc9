#pragma once
// What a component (model, reader, transform, metric, optimizer, schedule, task) accepts: every
// key with its type, default, allowed range or choices and one line of doc. validate() checks a
// config section against it and fills in the defaults; doc() renders `oar config doc`.
#include <yaml-cpp/yaml.h>

#include <cstdint>
#include <optional>
#include <string>
#include <type_traits>
#include <vector>

#include "engine/config/config.h"

namespace oar {

enum class KeyType { Int, Float, Bool, String, Path, IntList, FloatList, StringList, Map, Any };
const char* key_type_name(KeyType t);

struct KeySpec {
  std::string key;
  KeyType type = KeyType::Any;
  YAML::Node default_value;  // undefined or null: no default
  bool required = false;
  std::optional<double> min, max;    // inclusive; for lists, per element
  std::vector<std::string> choices;  // for String/StringList (per element)
  std::string doc;
};

namespace detail {
template <typename T>
constexpr KeyType key_type_of() {
  if constexpr (std::is_same_v<T, bool>)
    return KeyType::Bool;
  else if constexpr (std::is_integral_v<T>)
    return KeyType::Int;
  else if constexpr (std::is_floating_point_v<T>)
    return KeyType::Float;
  else if constexpr (std::is_same_v<T, std::vector<std::string>>)
    return KeyType::StringList;
  else if constexpr (std::is_same_v<T, std::vector<double>> ||
                     std::is_same_v<T, std::vector<float>>)
    return KeyType::FloatList;
  else if constexpr (std::is_same_v<T, std::vector<int64_t>> || std::is_same_v<T, std::vector<int>>)
    return KeyType::IntList;
  else if constexpr (std::is_convertible_v<T, std::string>)
    return KeyType::String;
  else
    static_assert(sizeof(T) == 0, "no KeyType for this C++ type");
}
// Floats as their shortest round-trip text (0.1, not 0.10000000000000001).
std::string float_text(double v);
template <typename T>
YAML::Node to_node(const T& v) {
  YAML::Node n;
  if constexpr (std::is_same_v<T, bool> || std::is_integral_v<T>)
    n = v;
  else if constexpr (std::is_floating_point_v<T>)
    n = float_text(static_cast<double>(v));
  else if constexpr (std::is_convertible_v<T, std::string>)
    n = std::string(v);
  else {
    n = YAML::Node(YAML::NodeType::Sequence);
    for (const auto& e : v) n.push_back(to_node(e));
  }
  return n;
}
}  // namespace detail

// Declared fluently; the modifiers (range, min, max, choices) apply to the last key added:
//   Schema("model", "simple_cnn", "A small CNN")
//       .key<int64_t>("num_classes", 10, "number of classes").range(1, 1e6)
//       .key<std::string>("act", "relu", "activation").choices({"relu", "gelu"})
//       .required<int64_t>("in_channels", "input channels")
//       .path("pretrained", "", "weights to start from");
struct Schema {
  std::string kind;
  std::string name;
  std::string doc;
  std::vector<KeySpec> keys;
  bool allow_extra = false;

  Schema() = default;
  Schema(std::string kind, std::string name, std::string doc)
      : kind(std::move(kind)), name(std::move(name)), doc(std::move(doc)) {}

  template <typename T>
  Schema& key(const std::string& key, const T& default_value, const std::string& doc) {
    return add(
        {key, detail::key_type_of<T>(), detail::to_node(default_value), false, {}, {}, {}, doc});
  }
  template <typename T>
  Schema& required(const std::string& key, const std::string& doc) {
    return add({key, detail::key_type_of<T>(), YAML::Node(), true, {}, {}, {}, doc});
  }
  // A key that may be absent (no default); get<T>(key, fallback) reads it.
  template <typename T>
  Schema& optional(const std::string& key, const std::string& doc) {
    return add({key, detail::key_type_of<T>(), YAML::Node(), false, {}, {}, {}, doc});
  }
  // A file or directory; resolved relative to the file that set it. Empty default: optional.
  Schema& path(const std::string& key, const std::string& default_value, const std::string& doc);
  Schema& required_path(const std::string& key, const std::string& doc);
  // Free-form nested map / any value; validated by whoever reads it.
  Schema& map(const std::string& key, const std::string& doc);
  Schema& any(const std::string& key, const std::string& doc);

  Schema& range(double lo, double hi);
  Schema& min(double lo);
  Schema& max(double hi);
  Schema& choices(std::vector<std::string> allowed);
  Schema& extra(bool allow = true);

  Schema& add(KeySpec spec);
  const KeySpec* find(const std::string& key) const;
  std::vector<std::string> key_names() const;
};

// Checks `config[section]` (a dotted path; "" for the top level) against `schema`: unknown keys
// (with the closest valid key), types (ints are accepted as floats), ranges, choices and required
// keys; then fills in defaults (origin "default") and rewrites Path values as absolute paths
// relative to the file that set them (-o values: relative to the working directory).
// All problems are reported at once, one line each, in file/line order: throws ConfigError.
// `ignore` lists keys that belong to the caller (e.g. `name`, the registry's selector).
void validate(Config& config, const std::string& section, const Schema& schema,
              const std::vector<std::string>& ignore = {});

// `oar config doc` text: header, then one row per key: key, type, default, allowed, doc.
std::string doc(const Schema& schema);

}  // namespace oar
