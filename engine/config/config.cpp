#include "engine/config/config.h"

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <regex>
#include <set>
#include <sstream>

#include "engine/config/key_path.h"

namespace oar {
namespace fs = std::filesystem;
using Origins = std::map<std::string, Origin>;

// ---------------------------------------------------------------- scalars

namespace {

bool is_quoted(const YAML::Node& n) {
  return n.Tag() == "!";
}

bool is_null_text(const std::string& s) {
  return s.empty() || s == "~" || s == "null" || s == "Null" || s == "NULL";
}

}  // namespace

bool parse_int(const YAML::Node& n, int64_t& out) {
  if (!n.IsScalar() || is_quoted(n)) return false;
  const std::string& s = n.Scalar();
  static const std::regex dec("[-+]?[0-9]+"), hex("0x[0-9a-fA-F]+");
  const char* b = s.data();
  const char* e = s.data() + s.size();
  if (std::regex_match(s, dec)) {
    if (*b == '+') ++b;
    auto r = std::from_chars(b, e, out);
    return r.ec == std::errc() && r.ptr == e;
  }
  if (std::regex_match(s, hex)) {
    auto r = std::from_chars(b + 2, e, out, 16);
    return r.ec == std::errc() && r.ptr == e;
  }
  return false;
}

bool parse_float(const YAML::Node& n, double& out) {
  if (!n.IsScalar() || is_quoted(n)) return false;
  const std::string& s = n.Scalar();
  static const std::regex num("[-+]?(\\.[0-9]+|[0-9]+(\\.[0-9]*)?)([eE][-+]?[0-9]+)?");
  static const std::regex inf("[-+]?\\.(inf|Inf|INF)"), nan("\\.(nan|NaN|NAN)");
  if (std::regex_match(s, num)) {
    out = std::strtod(s.c_str(), nullptr);
    return true;
  }
  if (std::regex_match(s, inf)) {
    out = s[0] == '-' ? -INFINITY : INFINITY;
    return true;
  }
  if (std::regex_match(s, nan)) {
    out = NAN;
    return true;
  }
  int64_t i;
  if (parse_int(n, i)) {
    out = static_cast<double>(i);
    return true;
  }
  return false;
}

bool parse_bool(const YAML::Node& n, bool& out) {
  if (!n.IsScalar() || is_quoted(n)) return false;
  static const std::set<std::string> yes{"true", "True", "TRUE", "yes", "Yes",
                                         "YES",  "on",   "On",   "ON"};
  static const std::set<std::string> no{"false", "False", "FALSE", "no", "No",
                                        "NO",    "off",   "Off",   "OFF"};
  if (yes.count(n.Scalar()))
    out = true;
  else if (no.count(n.Scalar()))
    out = false;
  else
    return false;
  return true;
}

ScalarKind scalar_kind(const YAML::Node& n) {
  if (!n.IsDefined() || n.IsNull()) return ScalarKind::Null;
  if (is_quoted(n)) return ScalarKind::String;
  if (n.IsScalar() && is_null_text(n.Scalar()) && n.Tag() != "") return ScalarKind::Null;
  const std::string& s = n.Scalar();
  if (s == "true" || s == "True" || s == "TRUE" || s == "false" || s == "False" || s == "FALSE")
    return ScalarKind::Bool;
  int64_t i;
  double d;
  if (parse_int(n, i)) return ScalarKind::Int;
  if (parse_float(n, d)) return ScalarKind::Float;
  return ScalarKind::String;
}

namespace {

// A scalar as YAML text that reads back as the same value, also inside a flow collection.
std::string scalar_text(const YAML::Node& n, bool in_flow) {
  const std::string& s = n.Scalar();
  YAML::Node plain(s);
  plain.SetTag("?");
  // A quoted "10" must stay a string; the emitter would print it bare.
  bool needs_quotes = (is_quoted(n) && scalar_kind(plain) != ScalarKind::String) || s.empty() ||
                      s.front() == ' ' || s.back() == ' ' ||
                      (in_flow && s.find_first_of(",[]{}#:") != std::string::npos);
  YAML::Emitter e;
  if (needs_quotes) e << YAML::DoubleQuoted;
  e << s;
  return e.c_str();
}

std::string flow_text(const YAML::Node& n, bool in_flow) {
  if (!n.IsDefined() || n.IsNull()) return "null";
  if (n.IsScalar()) return scalar_text(n, in_flow);
  if (n.IsSequence()) {
    std::string out = "[";
    for (size_t i = 0; i < n.size(); ++i) out += (i ? ", " : "") + flow_text(n[i], true);
    return out + "]";
  }
  std::string out = "{";
  bool first = true;
  for (auto it = n.begin(); it != n.end(); ++it) {
    out += (first ? "" : ", ") + scalar_text(it->first, true) + ": " + flow_text(it->second, true);
    first = false;
  }
  return out + "}";
}

}  // namespace

std::string yaml_text(const YAML::Node& n) {
  return flow_text(n, false);
}

std::string describe_value(const YAML::Node& n) {
  if (!n.IsDefined() || n.IsNull()) return "null";
  if (n.IsSequence()) return "a list";
  if (n.IsMap()) return "a map";
  switch (scalar_kind(n)) {
    case ScalarKind::Bool:
      return "bool " + n.Scalar();
    case ScalarKind::Int:
      return "int " + n.Scalar();
    case ScalarKind::Float:
      return "float " + n.Scalar();
    default:
      return "string '" + n.Scalar() + "'";
  }
}

// ---------------------------------------------------------------- loading

namespace {

struct Loaded {
  YAML::Node root{YAML::NodeType::Map};
  Origins origins;
};

Origin mark_origin(const std::string& file, const YAML::Mark& m, const char* source = "file") {
  return Origin{file, m.line + 1, m.column + 1, source};
}

// ${VAR} and ${VAR:-default} in a string scalar.
std::string expand_env(const std::string& s, const Origin& at, const std::string& key,
                       bool& changed) {
  std::string out;
  size_t i = 0;
  while (i < s.size()) {
    size_t open = s.find("${", i);
    if (open == std::string::npos) {
      out += s.substr(i);
      break;
    }
    out += s.substr(i, open - i);
    size_t close = s.find('}', open);
    if (close == std::string::npos)
      throw ConfigError(at, key, "unterminated ${ in '" + s + "'",
                        "write ${VAR} or ${VAR:-default}");
    std::string body = s.substr(open + 2, close - open - 2);
    std::string name = body, fallback;
    bool has_default = false;
    if (size_t d = body.find(":-"); d != std::string::npos) {
      name = body.substr(0, d);
      fallback = body.substr(d + 2);
      has_default = true;
    }
    static const std::regex ident("[A-Za-z_][A-Za-z0-9_]*");
    if (!std::regex_match(name, ident))
      throw ConfigError(at, key, "bad environment variable name '" + name + "' in '" + s + "'",
                        "letters, digits and _");
    const char* v = std::getenv(name.c_str());
    if (v && *v) {
      out += v;
    } else if (has_default) {
      out += fallback;
    } else {
      throw ConfigError(at, key, "environment variable " + name + " is not set",
                        "set it, or write ${" + name + ":-default}");
    }
    changed = true;
    i = close + 1;
  }
  return out;
}

// Records origins, rejects duplicate and non-scalar keys, expands ${VAR} in string scalars.
void walk(YAML::Node n, const std::string& path, const std::string& file, Origins& origins) {
  if (n.IsMap()) {
    std::map<std::string, int> seen;
    for (auto it = n.begin(); it != n.end(); ++it) {
      Origin at = mark_origin(file, it->first.Mark());
      if (!it->first.IsScalar())
        throw ConfigError(at, path, "a key must be a plain name, not a list or map");
      const std::string& k = it->first.Scalar();
      std::string p = child_key(path, k);
      if (auto s = seen.find(k); s != seen.end())
        throw ConfigError(at, p, "duplicate key", "first set on line " + std::to_string(s->second));
      seen[k] = at.line;
      YAML::Node v = it->second;
      if (v.IsScalar() && v.Scalar().find("${") != std::string::npos) {
        bool changed = false;
        std::string expanded = expand_env(v.Scalar(), at, p, changed);
        std::string tag = (is_quoted(v) || expanded.empty()) ? "!" : "?";
        v = expanded;
        v.SetTag(tag);
        if (changed) at.source = "env";
      }
      origins[p] = at;
      walk(v, p, file, origins);
    }
  } else if (n.IsSequence()) {
    for (size_t i = 0; i < n.size(); ++i) {
      YAML::Node v = n[i];
      Origin at = mark_origin(file, v.Mark());
      std::string p = child_index(path, i);
      if (v.IsScalar() && v.Scalar().find("${") != std::string::npos) {
        bool changed = false;
        std::string expanded = expand_env(v.Scalar(), at, p, changed);
        std::string tag = (is_quoted(v) || expanded.empty()) ? "!" : "?";
        v = expanded;
        v.SetTag(tag);
        if (changed) at.source = "env";
      }
      origins[p] = at;
      walk(v, p, file, origins);
    }
  }
}

void erase_under(Origins& o, const std::string& prefix) {
  for (auto it = o.lower_bound(prefix);
       it != o.end() && it->first.compare(0, prefix.size(), prefix) == 0;) {
    if (key_under(it->first, prefix))
      it = o.erase(it);
    else
      ++it;
  }
}

void copy_under(const Origins& from, const std::string& prefix, Origins& to) {
  for (auto it = from.lower_bound(prefix);
       it != from.end() && it->first.compare(0, prefix.size(), prefix) == 0; ++it) {
    if (key_under(it->first, prefix)) to[it->first] = it->second;
  }
}

void set_origin_tree(const YAML::Node& n, const std::string& path, const Origin& o, Origins& out) {
  out[path] = o;
  if (n.IsMap()) {
    for (auto it = n.begin(); it != n.end(); ++it)
      set_origin_tree(it->second, child_key(path, it->first.Scalar()), o, out);
  } else if (n.IsSequence()) {
    for (size_t i = 0; i < n.size(); ++i) set_origin_tree(n[i], child_index(path, i), o, out);
  }
}

// Deep merge of map `src` into map `dst` (both at `path`): maps merge, everything else replaces.
void merge_map(YAML::Node dst, const YAML::Node& src, const std::string& path, Origins& dst_o,
               const Origins& src_o) {
  for (auto it = src.begin(); it != src.end(); ++it) {
    const std::string& k = it->first.Scalar();
    std::string p = child_key(path, k);
    const YAML::Node& cdst = dst;
    YAML::Node existing = cdst[k];
    if (existing.IsDefined() && existing.IsMap() && it->second.IsMap()) {
      if (auto o = src_o.find(p); o != src_o.end()) dst_o[p] = o->second;
      merge_map(existing, it->second, p, dst_o, src_o);
    } else {
      dst[k] = YAML::Clone(it->second);
      erase_under(dst_o, p);
      copy_under(src_o, p, dst_o);
    }
  }
}

Loaded parse_text(const std::string& text, const std::string& file) {
  Loaded out;
  YAML::Node root;
  try {
    root = YAML::Load(text);
  } catch (const YAML::Exception& e) {
    throw ConfigError(ConfigProblem{file, e.mark.line + 1, e.mark.column + 1, "",
                                    "malformed YAML: " + e.msg, ""});
  }
  if (!root.IsDefined() || root.IsNull()) return out;
  if (!root.IsMap())
    throw ConfigError(mark_origin(file, root.Mark()), "", "the top level of a config must be a map",
                      "got " + describe_value(root));
  out.root = root;
  walk(out.root, "", file, out.origins);
  return out;
}

std::string read_text(const fs::path& path, const Origin* included_at, const std::string& shown) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    std::string why = std::strerror(errno);
    if (included_at)
      throw ConfigError(*included_at, "_base_", "cannot read base config '" + shown + "'", why);
    throw ConfigError(shown, 0, "", "cannot read config", why);
  }
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string chain_text(const std::vector<std::string>& chain, const std::string& last) {
  std::string out;
  for (const auto& c : chain) out += c + " -> ";
  return out + last;
}

// `chain` holds the display names, `ids` the normalized absolute paths, of the files being loaded.
Loaded load_text(const std::string& text, const std::string& shown, std::vector<std::string>& chain,
                 std::vector<std::string>& ids) {
  Loaded self = parse_text(text, shown);
  const YAML::Node& croot = self.root;
  YAML::Node bases = croot["_base_"];
  if (!bases.IsDefined()) return self;

  Origin base_at =
      self.origins.count("_base_") ? self.origins["_base_"] : Origin{shown, 0, 0, "file"};
  std::vector<std::pair<std::string, Origin>> names;
  if (bases.IsScalar() && scalar_kind(bases) != ScalarKind::Null) {
    names.push_back({bases.Scalar(), base_at});
  } else if (bases.IsSequence()) {
    for (size_t i = 0; i < bases.size(); ++i) {
      if (!bases[i].IsScalar())
        throw ConfigError(base_at, "_base_",
                          "expected a file name, got " + describe_value(bases[i]));
      names.push_back({bases[i].Scalar(), self.origins[child_index("_base_", i)]});
    }
  } else if (!bases.IsNull()) {
    throw ConfigError(base_at, "_base_", "expected a file name or a list of file names",
                      "got " + describe_value(bases));
  }

  Loaded acc;
  fs::path dir = fs::path(shown).parent_path();
  for (const auto& [name, at] : names) {
    fs::path p = fs::path(name).is_absolute() ? fs::path(name) : (dir / name).lexically_normal();
    std::string id = fs::absolute(p).lexically_normal().string();
    if (std::find(ids.begin(), ids.end(), id) != ids.end())
      throw ConfigError(at, "_base_", "cyclic _base_: " + chain_text(chain, p.string()));
    std::string base_text = read_text(p, &at, p.string());
    chain.push_back(p.string());
    ids.push_back(id);
    Loaded b = load_text(base_text, p.string(), chain, ids);
    chain.pop_back();
    ids.pop_back();
    merge_map(acc.root, b.root, "", acc.origins, b.origins);
  }
  self.root.remove("_base_");
  erase_under(self.origins, "_base_");
  merge_map(acc.root, self.root, "", acc.origins, self.origins);
  return acc;
}

}  // namespace

// ---------------------------------------------------------------- Config

const std::vector<std::string>& Config::mode_names() {
  static const std::vector<std::string> names{"train", "valid", "test", "infer"};
  return names;
}

Config::Config() : root_(YAML::NodeType::Map) {}
Config::Config(const Config& o)
    : root_(YAML::Clone(o.root_)), origins_(o.origins_), file_(o.file_) {}
Config& Config::operator=(const Config& o) {
  if (this != &o) {
    root_.reset(YAML::Clone(o.root_));
    origins_ = o.origins_;
    file_ = o.file_;
  }
  return *this;
}

Config Config::load(const fs::path& path, const std::vector<std::string>& overrides) {
  std::string shown = path.string();
  std::string text = read_text(path, nullptr, shown);
  return from_string(text, shown, overrides);
}

Config Config::from_string(const std::string& yaml, const std::string& virtual_name,
                           const std::vector<std::string>& overrides) {
  std::vector<std::string> chain{virtual_name};
  std::vector<std::string> ids{fs::absolute(fs::path(virtual_name)).lexically_normal().string()};
  Loaded l = load_text(yaml, virtual_name, chain, ids);
  Config c;
  c.root_.reset(l.root);
  c.origins_ = std::move(l.origins);
  c.file_ = virtual_name;
  for (const auto& o : overrides) c.apply_override(o);
  return c;
}

void Config::apply_override(const std::string& assignment) {
  const std::string allowed = "expected KEY=VALUE with KEY like a.b[1].c, e.g. -o optimizer.lr=0.1";
  size_t eq = assignment.find('=');
  if (eq == std::string::npos)
    throw ConfigError("-o", 0, assignment, "bad override: no '='", allowed);
  std::string key = assignment.substr(0, eq);
  while (!key.empty() && key.back() == ' ') key.pop_back();
  auto path = parse_key_path(key);
  if (!path) throw ConfigError("-o", 0, assignment, "bad override key '" + key + "'", allowed);
  YAML::Node value;
  try {
    value = YAML::Load(assignment.substr(eq + 1));
  } catch (const YAML::Exception& e) {
    throw ConfigError("-o", 0, assignment, "value is not valid YAML: " + e.msg,
                      "quote strings with special characters, e.g. -o name='a: b'");
  }
  if (!value.IsDefined()) value = YAML::Node(YAML::NodeType::Null);
  // Lists may grow by one (index == size) so that -o can append.
  std::string prefix;
  YAML::Node cur = root_;
  for (size_t i = 0; i + 1 < path->size(); ++i) {
    const KeySegment& seg = (*path)[i];
    const KeySegment& next = (*path)[i + 1];
    std::string here = seg.index >= 0 ? child_index(prefix, seg.index) : child_key(prefix, seg.key);
    YAML::Node child;
    if (seg.index >= 0) {
      if (!cur.IsSequence() || static_cast<size_t>(seg.index) >= cur.size())
        throw ConfigError("-o", 0, assignment, "no list element " + here,
                          cur.IsSequence()
                              ? "the list has " + std::to_string(cur.size()) + " elements"
                              : prefix + " is " + describe_value(cur));
      child.reset(cur[seg.index]);
    } else {
      if (!cur.IsMap() && !cur.IsNull())
        throw ConfigError("-o", 0, assignment, "cannot set " + here,
                          prefix + " is " + describe_value(cur) + ", not a map");
      const YAML::Node& ccur = cur;
      if (YAML::Node got = ccur[seg.key]; got.IsDefined())
        child.reset(got);
      else
        child.reset(YAML::Node(YAML::NodeType::Undefined));
      if (!child.IsDefined() || (child.IsNull() && next.index < 0)) {
        if (next.index >= 0)
          throw ConfigError("-o", 0, assignment, "no list " + here, "index into an existing list");
        cur[seg.key] = YAML::Node(YAML::NodeType::Map);
        origins_[here] = Origin{"-o", 0, 0, "override"};
        child.reset(ccur[seg.key]);
      }
    }
    cur.reset(child);
    prefix = here;
  }
  const KeySegment& last = path->back();
  std::string full = join_key_path(*path);
  if (last.index >= 0) {
    if (!cur.IsSequence() || static_cast<size_t>(last.index) > cur.size())
      throw ConfigError("-o", 0, assignment, "no list element " + full,
                        cur.IsSequence()
                            ? "the list has " + std::to_string(cur.size()) + " elements"
                            : prefix + " is " + describe_value(cur));
    if (static_cast<size_t>(last.index) == cur.size())
      cur.push_back(value);
    else
      cur[last.index] = value;
  } else {
    if (!cur.IsMap() && !cur.IsNull())
      throw ConfigError("-o", 0, assignment, "cannot set " + full,
                        (prefix.empty() ? std::string("the top level") : prefix) + " is " +
                            describe_value(cur) + ", not a map");
    cur[last.key] = value;
  }
  erase_under(origins_, full);
  set_origin_tree(value, full, Origin{"-o", 0, 0, "override"}, origins_);
}

YAML::Node Config::node(const std::string& dotted) const {
  if (dotted.empty()) return root_;
  auto path = parse_key_path(dotted);
  if (!path) return YAML::Node(YAML::NodeType::Undefined);
  YAML::Node cur = root_;
  for (const auto& seg : *path) {
    const YAML::Node& c = cur;
    YAML::Node next;
    if (seg.index >= 0) {
      if (!c.IsSequence() || static_cast<size_t>(seg.index) >= c.size())
        return YAML::Node(YAML::NodeType::Undefined);
      next.reset(c[seg.index]);
    } else {
      if (!c.IsMap()) return YAML::Node(YAML::NodeType::Undefined);
      YAML::Node got = c[seg.key];  // invalid when absent; reset() would throw on it
      if (!got.IsDefined()) return YAML::Node(YAML::NodeType::Undefined);
      next.reset(got);
    }
    cur.reset(next);
  }
  return cur;
}

bool Config::has(const std::string& dotted) const {
  return node(dotted).IsDefined();
}

Origin Config::origin(const std::string& dotted) const {
  std::string p = dotted;
  while (!p.empty()) {
    if (auto it = origins_.find(p); it != origins_.end()) return it->second;
    size_t cut = p.find_last_of(".[");
    if (cut == std::string::npos) break;
    p = p.substr(0, cut);
  }
  return Origin{file_, 0, 0, "file"};
}

Origin Config::location(const std::string& dotted) const {
  std::string p = dotted;
  while (!p.empty()) {
    if (auto it = origins_.find(p); it != origins_.end() && it->second.source != "default")
      return it->second;
    size_t cut = p.find_last_of(".[");
    if (cut == std::string::npos) break;
    p = p.substr(0, cut);
  }
  return Origin{file_, 0, 0, "file"};
}

ConfigError Config::error(const std::string& dotted, const std::string& message,
                          const std::string& allowed) const {
  return ConfigError(location(dotted), dotted, message, allowed);
}

void Config::set(const std::string& dotted, const YAML::Node& value, const Origin& origin) {
  if (dotted.empty()) {
    root_.reset(YAML::Clone(value));
    origins_.clear();
    set_origin_tree(root_, "", origin, origins_);
    origins_.erase("");
    return;
  }
  auto path = parse_key_path(dotted);
  if (!path) throw ConfigError(origin, dotted, "not a valid key path", "like a.b[1].c");
  YAML::Node cur = root_;
  std::string prefix;
  for (size_t i = 0; i + 1 < path->size(); ++i) {
    const KeySegment& seg = (*path)[i];
    std::string here = seg.index >= 0 ? child_index(prefix, seg.index) : child_key(prefix, seg.key);
    YAML::Node child;
    const YAML::Node& c = cur;
    if (seg.index >= 0) {
      if (!c.IsSequence() || static_cast<size_t>(seg.index) >= c.size())
        throw ConfigError(origin, dotted, "no list element " + here);
      child.reset(c[seg.index]);
    } else {
      if (!c.IsMap() && !c.IsNull()) throw ConfigError(origin, dotted, here + " is not a map");
      YAML::Node got = c[seg.key];
      if (got.IsDefined()) child.reset(got);
      if (!got.IsDefined() || child.IsNull()) {
        cur[seg.key] = YAML::Node(YAML::NodeType::Map);
        origins_[here] = origin;
        child.reset(c[seg.key]);
      }
    }
    cur.reset(child);
    prefix = here;
  }
  const KeySegment& last = path->back();
  if (last.index >= 0) {
    if (!cur.IsSequence() || static_cast<size_t>(last.index) > cur.size())
      throw ConfigError(origin, dotted, "no list element " + dotted);
    if (static_cast<size_t>(last.index) == cur.size())
      cur.push_back(YAML::Clone(value));
    else
      cur[last.index] = YAML::Clone(value);
  } else {
    if (!cur.IsMap() && !cur.IsNull()) throw ConfigError(origin, dotted, prefix + " is not a map");
    cur[last.key] = YAML::Clone(value);
  }
  std::string full = join_key_path(*path);
  erase_under(origins_, full);
  set_origin_tree(value, full, origin, origins_);
}

void Config::erase(const std::string& dotted) {
  auto path = parse_key_path(dotted);
  if (!path) return;
  std::vector<KeySegment> parent_path(path->begin(), path->end() - 1);
  YAML::Node parent = node(join_key_path(parent_path));
  if (!parent.IsDefined()) return;
  const KeySegment& last = path->back();
  if (last.index >= 0 && parent.IsSequence())
    parent.remove(last.index);
  else if (last.index < 0 && parent.IsMap())
    parent.remove(last.key);
  erase_under(origins_, join_key_path(*path));
}

std::vector<std::string> Config::keys(const std::string& dotted) const {
  std::vector<std::string> out;
  YAML::Node n = node(dotted);
  if (!n.IsDefined() || !n.IsMap()) return out;
  for (auto it = n.begin(); it != n.end(); ++it) out.push_back(it->first.Scalar());
  return out;
}

Config Config::mode(const std::string& section, const std::string& mode) const {
  Config out = *this;
  YAML::Node sec = node(section);
  if (!sec.IsDefined() || !sec.IsMap()) return out;
  std::vector<std::string> modes = mode_names();
  if (std::find(modes.begin(), modes.end(), mode) == modes.end()) modes.push_back(mode);

  YAML::Node eff(YAML::NodeType::Map);
  Origins eff_o;
  for (auto it = sec.begin(); it != sec.end(); ++it) {
    const std::string& k = it->first.Scalar();
    if (std::find(modes.begin(), modes.end(), k) != modes.end()) continue;
    eff[k] = YAML::Clone(it->second);
    copy_under(origins_, child_key(section, k), eff_o);
  }
  const YAML::Node& csec = sec;
  YAML::Node m = csec[mode];
  std::string mpath = child_key(section, mode);
  if (m.IsDefined() && m.IsMap()) {
    Origins m_o;  // the mode section's origins, re-keyed as if written in the section itself
    for (auto it = origins_.lower_bound(mpath); it != origins_.end(); ++it) {
      if (!key_under(it->first, mpath)) {
        if (it->first.compare(0, mpath.size(), mpath) != 0) break;
        continue;
      }
      if (it->first.size() == mpath.size()) continue;
      m_o[section + it->first.substr(mpath.size())] = it->second;
    }
    merge_map(eff, m, section, eff_o, m_o);
  } else if (m.IsDefined() && !m.IsNull()) {
    throw error(mpath, "a mode section must be a map", "got " + describe_value(m));
  }
  Origin sec_origin = origin(section);
  out.set(section, eff, sec_origin);
  erase_under(out.origins_, section);
  out.origins_[section] = sec_origin;
  for (auto& [k, o] : eff_o) out.origins_[k] = o;
  return out;
}

// ---------------------------------------------------------------- typed reads

namespace {

[[noreturn]] void wrong_type(const Config& c, const std::string& key, const YAML::Node& n,
                             const std::string& expected) {
  throw c.error(key, "expected " + expected + ", got " + describe_value(n));
}

}  // namespace

void Config::read(const std::string& key, const YAML::Node& n, bool& out) const {
  if (!parse_bool(n, out)) wrong_type(*this, key, n, "a bool");
}
void Config::read(const std::string& key, const YAML::Node& n, int64_t& out) const {
  if (!parse_int(n, out)) wrong_type(*this, key, n, "an int");
}
void Config::read(const std::string& key, const YAML::Node& n, int& out) const {
  int64_t v;
  if (!parse_int(n, v)) wrong_type(*this, key, n, "an int");
  if (v < INT32_MIN || v > INT32_MAX)
    throw error(key, "value " + n.Scalar() + " is out of range", "a 32-bit int");
  out = static_cast<int>(v);
}
void Config::read(const std::string& key, const YAML::Node& n, double& out) const {
  if (!parse_float(n, out)) wrong_type(*this, key, n, "a float");
}
void Config::read(const std::string& key, const YAML::Node& n, float& out) const {
  double v;
  if (!parse_float(n, v)) wrong_type(*this, key, n, "a float");
  out = static_cast<float>(v);
}
void Config::read(const std::string& key, const YAML::Node& n, std::string& out) const {
  if (!n.IsScalar() || scalar_kind(n) == ScalarKind::Null) wrong_type(*this, key, n, "a string");
  out = n.Scalar();
}
void Config::read(const std::string& key, const YAML::Node& n, fs::path& out) const {
  if (!n.IsScalar() || scalar_kind(n) == ScalarKind::Null) wrong_type(*this, key, n, "a path");
  out = n.Scalar();
}

#define OAR_READ_LIST(T, what)                                                                \
  void Config::read(const std::string& key, const YAML::Node& n, std::vector<T>& out) const { \
    if (!n.IsSequence()) wrong_type(*this, key, n, what);                                     \
    out.clear();                                                                              \
    for (size_t i = 0; i < n.size(); ++i) {                                                   \
      T v{};                                                                                  \
      read(child_index(key, i), n[i], v);                                                     \
      out.push_back(v);                                                                       \
    }                                                                                         \
  }
OAR_READ_LIST(int, "a list of int")
OAR_READ_LIST(int64_t, "a list of int")
OAR_READ_LIST(float, "a list of float")
OAR_READ_LIST(double, "a list of float")
OAR_READ_LIST(std::string, "a list of string")
#undef OAR_READ_LIST

void Config::read(const std::string&, const YAML::Node& n, YAML::Node& out) const {
  out.reset(YAML::Clone(n));
}

// ---------------------------------------------------------------- dump and diff

namespace {

std::string origin_comment(const Origin& o) {
  if (o.source == "override") return "# from -o";
  if (o.source == "default") return "# default";
  std::string out = "# from " + o.file;
  if (o.line > 0) out += ":" + std::to_string(o.line);
  if (o.source == "env") out += " (env)";
  return out;
}

bool inline_value(const YAML::Node& n) {
  if (!n.IsDefined() || n.IsNull() || n.IsScalar()) return true;
  if (n.size() == 0) return true;
  if (n.IsSequence()) {
    for (size_t i = 0; i < n.size(); ++i)
      if (!n[i].IsScalar() && !n[i].IsNull()) return false;
    return true;
  }
  return false;
}

void emit_block(const YAML::Node& n, const std::string& path, int indent, const Config& c,
                bool with_origins, std::string& out);

void emit_entry(const std::string& lead, const YAML::Node& v, const std::string& path, int indent,
                const Config& c, bool with_origins, std::string& out) {
  std::string comment;
  if (with_origins && c.origins().count(path))
    comment = "  " + origin_comment(c.origins().at(path));
  if (inline_value(v)) {
    out += lead + " " + yaml_text(v) + comment + "\n";
  } else {
    out += lead + comment + "\n";
    emit_block(v, path, indent + 2, c, with_origins, out);
  }
}

void emit_block(const YAML::Node& n, const std::string& path, int indent, const Config& c,
                bool with_origins, std::string& out) {
  std::string pad(static_cast<size_t>(indent), ' ');
  if (n.IsMap()) {
    for (auto it = n.begin(); it != n.end(); ++it) {
      const std::string& k = it->first.Scalar();
      YAML::Emitter ke;
      ke << k;
      emit_entry(pad + ke.c_str() + ":", it->second, child_key(path, k), indent, c, with_origins,
                 out);
    }
  } else if (n.IsSequence()) {
    for (size_t i = 0; i < n.size(); ++i) {
      std::string p = child_index(path, i);
      const YAML::Node& e = n[i];
      if (e.IsMap() && e.size() > 0) {
        // `- key: value` then the rest of the map indented under the first key.
        std::string item;
        emit_block(e, p, indent + 2, c, with_origins, item);
        item.replace(static_cast<size_t>(indent), 2, "- ");
        out += item;
      } else {
        emit_entry(pad + "-", e, p, indent, c, with_origins, out);
      }
    }
  }
}

void flatten(const YAML::Node& n, const std::string& path,
             std::map<std::string, std::string>& out) {
  if (n.IsMap() && n.size() > 0) {
    for (auto it = n.begin(); it != n.end(); ++it)
      flatten(it->second, child_key(path, it->first.Scalar()), out);
  } else if (!path.empty()) {
    out[path] = yaml_text(n);
  }
}

}  // namespace

std::string Config::dump(bool with_origins) const {
  std::string out;
  emit_block(root_, "", 0, *this, with_origins, out);
  if (out.empty()) out = "{}\n";
  return out;
}

std::string diff(const Config& a, const Config& b) {
  std::map<std::string, std::string> fa, fb;
  flatten(a.root(), "", fa);
  flatten(b.root(), "", fb);
  std::set<std::string> keys;
  for (const auto& [k, v] : fa) keys.insert(k);
  for (const auto& [k, v] : fb) keys.insert(k);
  std::string out;
  for (const auto& k : keys) {
    auto ia = fa.find(k), ib = fb.find(k);
    if (ia == fa.end())
      out += "+ " + k + ": " + ib->second + "\n";
    else if (ib == fb.end())
      out += "- " + k + ": " + ia->second + "\n";
    else if (ia->second != ib->second)
      out += "~ " + k + ": " + ia->second + " -> " + ib->second + "\n";
  }
  return out;
}

}  // namespace oar
