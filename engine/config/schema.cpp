#include "engine/config/schema.h"

#include <algorithm>
#include <charconv>
#include <cmath>

#include "engine/config/key_path.h"

namespace oar {
namespace fs = std::filesystem;

const char* key_type_name(KeyType t) {
  switch (t) {
    case KeyType::Int:
      return "int";
    case KeyType::Float:
      return "float";
    case KeyType::Bool:
      return "bool";
    case KeyType::String:
      return "string";
    case KeyType::Path:
      return "path";
    case KeyType::IntList:
      return "list of int";
    case KeyType::FloatList:
      return "list of float";
    case KeyType::StringList:
      return "list of string";
    case KeyType::Map:
      return "map";
    case KeyType::Any:
      return "any";
  }
  return "?";
}

std::string detail::float_text(double v) {
  char buf[64];
  auto r = std::to_chars(buf, buf + sizeof(buf), v);
  std::string s(buf, r.ptr);
  if (s == "inf") return ".inf";
  if (s == "-inf") return "-.inf";
  if (s == "nan" || s == "-nan") return ".nan";
  return s;
}

namespace {

std::string number_text(double v) {
  if (std::fabs(v) < 1e15 && v == std::floor(v)) return std::to_string(static_cast<int64_t>(v));
  return detail::float_text(v);
}

std::string allowed_text(const KeySpec& k) {
  std::string out;
  if (k.min && k.max)
    out = number_text(*k.min) + " to " + number_text(*k.max);
  else if (k.min)
    out = ">= " + number_text(*k.min);
  else if (k.max)
    out = "<= " + number_text(*k.max);
  if (!k.choices.empty()) {
    if (!out.empty()) out += "; ";
    out += "one of ";
    for (size_t i = 0; i < k.choices.size(); ++i) out += (i ? ", " : "") + k.choices[i];
  }
  return out;
}

}  // namespace

Schema& Schema::add(KeySpec spec) {
  auto it =
      std::find_if(keys.begin(), keys.end(), [&](const KeySpec& k) { return k.key == spec.key; });
  if (it != keys.end())
    *it = std::move(spec);
  else
    keys.push_back(std::move(spec));
  return *this;
}

Schema& Schema::path(const std::string& key, const std::string& default_value,
                     const std::string& doc) {
  YAML::Node d;
  if (!default_value.empty()) d = default_value;
  return add({key, KeyType::Path, d, false, {}, {}, {}, doc});
}
Schema& Schema::required_path(const std::string& key, const std::string& doc) {
  return add({key, KeyType::Path, YAML::Node(), true, {}, {}, {}, doc});
}
Schema& Schema::map(const std::string& key, const std::string& doc) {
  return add({key, KeyType::Map, YAML::Node(YAML::NodeType::Map), false, {}, {}, {}, doc});
}
Schema& Schema::any(const std::string& key, const std::string& doc) {
  return add({key, KeyType::Any, YAML::Node(), false, {}, {}, {}, doc});
}
Schema& Schema::range(double lo, double hi) {
  return min(lo).max(hi);
}
Schema& Schema::min(double lo) {
  OAR_CHECK(!keys.empty(), "Schema::min before any key");
  keys.back().min = lo;
  return *this;
}
Schema& Schema::max(double hi) {
  OAR_CHECK(!keys.empty(), "Schema::max before any key");
  keys.back().max = hi;
  return *this;
}
Schema& Schema::choices(std::vector<std::string> allowed) {
  OAR_CHECK(!keys.empty(), "Schema::choices before any key");
  keys.back().choices = std::move(allowed);
  return *this;
}
Schema& Schema::extra(bool allow) {
  allow_extra = allow;
  return *this;
}

const KeySpec* Schema::find(const std::string& key) const {
  for (const auto& k : keys)
    if (k.key == key) return &k;
  return nullptr;
}

std::vector<std::string> Schema::key_names() const {
  std::vector<std::string> out;
  for (const auto& k : keys) out.push_back(k.key);
  return out;
}

namespace {

struct Checker {
  Config& config;
  std::vector<ConfigProblem>& problems;

  void problem(const std::string& key, const std::string& message, const std::string& allowed) {
    Origin o = config.location(key);
    problems.push_back({o.file, o.line, 0, key, message, allowed});
  }

  void wrong_type(const std::string& key, const YAML::Node& n, const char* expected,
                  const KeySpec& spec) {
    problem(key, std::string("expected ") + expected + ", got " + describe_value(n),
            allowed_text(spec));
  }

  void check_range(const std::string& key, double v, const std::string& text, const KeySpec& spec) {
    if ((spec.min && !(v >= *spec.min)) || (spec.max && !(v <= *spec.max)))
      problem(key, "value " + text + " is out of range", allowed_text(spec));
  }

  // One scalar element of type `t` (Int, Float, Bool, String or Path).
  void check_scalar(const std::string& key, const YAML::Node& n, KeyType t, const KeySpec& spec) {
    switch (t) {
      case KeyType::Int: {
        int64_t v;
        if (!parse_int(n, v)) return wrong_type(key, n, "an int", spec);
        return check_range(key, static_cast<double>(v), n.Scalar(), spec);
      }
      case KeyType::Float: {
        double v;
        if (!parse_float(n, v)) return wrong_type(key, n, "a float", spec);
        return check_range(key, v, n.Scalar(), spec);
      }
      case KeyType::Bool: {
        bool v;
        if (!parse_bool(n, v))
          problem(key, "expected a bool, got " + describe_value(n), "true or false");
        return;
      }
      default: {
        if (!n.IsScalar() || scalar_kind(n) == ScalarKind::Null)
          return wrong_type(key, n, t == KeyType::Path ? "a path" : "a string", spec);
        if (!spec.choices.empty() &&
            std::find(spec.choices.begin(), spec.choices.end(), n.Scalar()) == spec.choices.end())
          problem(key, "'" + n.Scalar() + "' is not allowed",
                  suggestion_text(n.Scalar(), spec.choices, "one of"));
      }
    }
  }

  bool check(const std::string& key, const YAML::Node& n, const KeySpec& spec) {
    size_t before = problems.size();
    KeyType elem = KeyType::Any;
    switch (spec.type) {
      case KeyType::Any:
        return true;
      case KeyType::Map:
        if (!n.IsMap()) wrong_type(key, n, "a map", spec);
        break;
      case KeyType::IntList:
        elem = KeyType::Int;
        break;
      case KeyType::FloatList:
        elem = KeyType::Float;
        break;
      case KeyType::StringList:
        elem = KeyType::String;
        break;
      default:
        if (!n.IsScalar())
          wrong_type(key, n,
                     (std::string("a") + (spec.type == KeyType::Int ? "n " : " ") +
                      key_type_name(spec.type))
                         .c_str(),
                     spec);
        else
          check_scalar(key, n, spec.type, spec);
    }
    if (elem != KeyType::Any) {
      if (!n.IsSequence()) {
        wrong_type(key, n, (std::string("a ") + key_type_name(spec.type)).c_str(), spec);
      } else {
        for (size_t i = 0; i < n.size(); ++i) check_scalar(child_index(key, i), n[i], elem, spec);
      }
    }
    return problems.size() == before;
  }
};

void resolve_path(Config& config, const std::string& key, const YAML::Node& n) {
  const std::string& text = n.Scalar();
  if (text.empty() || text.find("://") != std::string::npos) return;
  Origin o = config.origin(key);
  fs::path p(text);
  if (p.is_absolute()) {
    p = p.lexically_normal();
  } else {
    fs::path base =
        (o.source == "file" || o.source == "env") ? fs::path(o.file).parent_path() : fs::path();
    p = fs::absolute(base / p).lexically_normal();
  }
  if (p.string() == text) return;
  YAML::Node v(p.string());
  v.SetTag("!");
  config.set(key, v, o);
}

}  // namespace

void validate(Config& config, const std::string& section, const Schema& schema,
              const std::vector<std::string>& ignore) {
  std::vector<ConfigProblem> problems;
  Checker ck{config, problems};
  std::string what = schema.kind + " '" + schema.name + "'";
  YAML::Node sec = config.node(section);
  if (sec.IsDefined() && !sec.IsNull() && !sec.IsMap()) {
    ck.problem(section, "expected a map of " + what + " settings", "got " + describe_value(sec));
    throw ConfigError(problems);
  }
  if (!schema.allow_extra && sec.IsMap()) {
    std::vector<std::string> valid = schema.key_names();
    for (auto it = sec.begin(); it != sec.end(); ++it) {
      const std::string& k = it->first.Scalar();
      if (schema.find(k) || std::find(ignore.begin(), ignore.end(), k) != ignore.end()) continue;
      std::string allowed = suggestion_text(k, valid, "valid keys");
      ck.problem(child_key(section, k), "unknown key for " + what, allowed);
    }
  }
  for (const KeySpec& spec : schema.keys) {
    std::string full = child_key(section, spec.key);
    YAML::Node v = config.node(full);
    bool absent = !v.IsDefined() || (v.IsNull() && spec.type != KeyType::Any);
    if (absent) {
      if (spec.required) {
        ck.problem(full, "missing required key for " + what,
                   std::string(key_type_name(spec.type)) + ": " + spec.doc);
      } else if (!v.IsDefined() && spec.default_value.IsDefined() && !spec.default_value.IsNull()) {
        config.set(full, spec.default_value, Origin{"", 0, 0, "default"});
      }
      continue;
    }
    if (ck.check(full, v, spec) && spec.type == KeyType::Path) resolve_path(config, full, v);
  }
  if (!problems.empty()) throw ConfigError(std::move(problems));
}

std::string doc(const Schema& schema) {
  std::string out = schema.kind + " " + schema.name;
  if (!schema.doc.empty()) out += ": " + schema.doc;
  out += "\n\n";
  std::vector<std::vector<std::string>> rows{{"key", "type", "default", "allowed", "doc"}};
  for (const auto& k : schema.keys) {
    std::string def = k.required ? "(required)"
                      : (!k.default_value.IsDefined() || k.default_value.IsNull())
                          ? "-"
                          : yaml_text(k.default_value);
    std::string allowed = allowed_text(k);
    rows.push_back({k.key, key_type_name(k.type), def, allowed.empty() ? "-" : allowed, k.doc});
  }
  std::vector<size_t> width(5, 0);
  for (const auto& r : rows)
    for (size_t i = 0; i < 4; ++i) width[i] = std::max(width[i], r[i].size());
  for (const auto& r : rows) {
    std::string line = "  ";
    for (size_t i = 0; i < 5; ++i) {
      line += r[i];
      if (i < 4) line += std::string(width[i] - r[i].size() + 2, ' ');
    }
    while (!line.empty() && line.back() == ' ') line.pop_back();
    out += line + "\n";
  }
  if (schema.allow_extra) out += "\n  (other keys are passed through unchecked)\n";
  return out;
}

}  // namespace oar
