#pragma once
// A resolved config: the YAML tree after `_base_` inheritance, ${VAR} expansion and -o overrides,
// plus where every value came from, so that any later error can name the file, line and key.
//
// Layering (later wins): bases in listed order < the file itself < -o overrides; defaults from
// schemas fill only what is still missing. Maps merge key by key; lists and scalars replace.
#include <yaml-cpp/yaml.h>

#include <cstdint>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "engine/config/error.h"

namespace oar {

// The YAML 1.2 core type of a scalar as written: a quoted scalar is always String.
enum class ScalarKind { Null, Bool, Int, Float, String };
ScalarKind scalar_kind(const YAML::Node& node);
// "int 3", "string 'abc'", "a list", "a map", "null": for "expected X, got Y" messages.
std::string describe_value(const YAML::Node& node);
// One-line YAML text of a node (flow style for collections, quoting strings that need it).
std::string yaml_text(const YAML::Node& node);

class Config {
 public:
  // Mode sections of `data` (and of any section passed to mode()).
  static const std::vector<std::string>& mode_names();

  Config();
  Config(const Config& other);
  Config& operator=(const Config& other);
  Config(Config&&) noexcept = default;
  Config& operator=(Config&&) noexcept = default;

  // Reads `path`, resolves its `_base_` chain and env vars, then applies `overrides`
  // (each `a.b[1].c=value`, the value read as YAML). Throws ConfigError.
  static Config load(const std::filesystem::path& path,
                     const std::vector<std::string>& overrides = {});
  // Same from text; `virtual_name` is used in messages and as the base for relative paths.
  static Config from_string(const std::string& yaml, const std::string& virtual_name = "<string>",
                            const std::vector<std::string>& overrides = {});

  // Applies one `-o` assignment. Bad syntax or bad YAML: ConfigError naming the override.
  void apply_override(const std::string& assignment);

  // The whole tree. Read-only use: change values through set() so origins stay right.
  const YAML::Node& root() const { return root_; }
  // The node at `dotted` (`a.b[1].c`), or an undefined node (IsDefined() false) when absent.
  YAML::Node node(const std::string& dotted) const;
  bool has(const std::string& dotted) const;

  // Typed reads: T is bool, int, int64_t, float, double, std::string, std::filesystem::path,
  // std::vector of int/int64_t/float/double/std::string, or YAML::Node. A missing key (first
  // form) or a value of the wrong type is a ConfigError naming file:line:key.
  template <typename T>
  T get(const std::string& dotted) const {
    YAML::Node n = node(dotted);
    if (!n.IsDefined()) throw error(dotted, "missing required key");
    T out{};
    read(dotted, n, out);
    return out;
  }
  // Missing or null: `fallback`.
  template <typename T>
  T get(const std::string& dotted, const T& fallback) const {
    YAML::Node n = node(dotted);
    if (!n.IsDefined() || n.IsNull()) return fallback;
    T out{};
    read(dotted, n, out);
    return out;
  }

  // Where `dotted` (or its nearest recorded ancestor) was set; the main file when unknown.
  Origin origin(const std::string& dotted) const;
  // Where to point an error about `dotted`: the nearest ancestor that was written in a file or
  // by -o (defaults have no place), else the main file.
  Origin location(const std::string& dotted) const;
  const std::map<std::string, Origin>& origins() const { return origins_; }
  // The file given to load() / from_string().
  const std::string& file() const { return file_; }

  // Resolved YAML; with_origins appends `# from base.yaml:12`, `# from -o`, `# default`.
  std::string dump(bool with_origins = false) const;

  // The config with `section` replaced by its effective form for `mode`: the section's shared
  // keys deep-merged with section.<mode>, and all mode sub-sections removed. Origins follow.
  Config mode(const std::string& section, const std::string& mode) const;

  // Sets (creating maps on the way) and records `origin` for the value and everything in it.
  void set(const std::string& dotted, const YAML::Node& value, const Origin& origin);
  void erase(const std::string& dotted);
  // Keys of the map at `dotted` in file order (empty when it is absent or not a map).
  std::vector<std::string> keys(const std::string& dotted) const;

  // A ConfigError located at `dotted`'s origin.
  ConfigError error(const std::string& dotted, const std::string& message,
                    const std::string& allowed = "") const;

 private:
  void read(const std::string& key, const YAML::Node& n, bool& out) const;
  void read(const std::string& key, const YAML::Node& n, int& out) const;
  void read(const std::string& key, const YAML::Node& n, int64_t& out) const;
  void read(const std::string& key, const YAML::Node& n, float& out) const;
  void read(const std::string& key, const YAML::Node& n, double& out) const;
  void read(const std::string& key, const YAML::Node& n, std::string& out) const;
  void read(const std::string& key, const YAML::Node& n, std::filesystem::path& out) const;
  void read(const std::string& key, const YAML::Node& n, std::vector<int>& out) const;
  void read(const std::string& key, const YAML::Node& n, std::vector<int64_t>& out) const;
  void read(const std::string& key, const YAML::Node& n, std::vector<float>& out) const;
  void read(const std::string& key, const YAML::Node& n, std::vector<double>& out) const;
  void read(const std::string& key, const YAML::Node& n, std::vector<std::string>& out) const;
  void read(const std::string& key, const YAML::Node& n, YAML::Node& out) const;

  YAML::Node root_;
  std::map<std::string, Origin> origins_;
  std::string file_;
};

// Key-by-key differences, one line each, sorted by dotted key:
// `+ key: value` (only in b), `- key: value` (only in a), `~ key: old -> new`. Lists compare as
// whole values. Empty when the configs are equal.
std::string diff(const Config& a, const Config& b);

// Scalar readers shared with schema validation; false when the text is not of that type.
bool parse_int(const YAML::Node& scalar, int64_t& out);
bool parse_float(const YAML::Node& scalar, double& out);
bool parse_bool(const YAML::Node& scalar, bool& out);

}  // namespace oar
