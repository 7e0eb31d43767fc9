#include "engine/config/edit.h"

#include <yaml-cpp/yaml.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include "engine/config/config.h"
#include "engine/config/key_path.h"
#include "engine/io/atomic_file.h"

namespace oar {
namespace {

const char* kAllowed = "expected KEY=VALUE with KEY like a.b[1].c, e.g. optimizer.lr=0.1";

struct Assignment {
  std::string text;
  std::vector<KeySegment> path;
  std::string value_text;
  YAML::Node value;
};

Assignment parse_assignment(const std::string& text, const std::string& file) {
  Assignment a;
  a.text = text;
  size_t eq = text.find('=');
  if (eq == std::string::npos) throw ConfigError(file, 0, text, "bad assignment: no '='", kAllowed);
  auto path = parse_key_path(text.substr(0, eq));
  if (!path)
    throw ConfigError(file, 0, text, "bad assignment key '" + text.substr(0, eq) + "'", kAllowed);
  a.path = *path;
  a.value_text = text.substr(eq + 1);
  while (!a.value_text.empty() && a.value_text.front() == ' ') a.value_text.erase(0, 1);
  while (!a.value_text.empty() && a.value_text.back() == ' ') a.value_text.pop_back();
  if (a.value_text.empty() || a.value_text.find('\n') != std::string::npos)
    throw ConfigError(file, 0, text, "the value must be one line of YAML",
                      "write key=null to clear");
  try {
    a.value = YAML::Load(a.value_text);
  } catch (const YAML::Exception& e) {
    throw ConfigError(file, 0, text, "value is not valid YAML: " + e.msg,
                      "quote strings with special characters, e.g. name='a: b'");
  }
  return a;
}

YAML::Node parse(const std::string& text, const std::string& file) {
  try {
    return YAML::Load(text);
  } catch (const YAML::Exception& e) {
    throw ConfigError(ConfigProblem{file, e.mark.line + 1, e.mark.column + 1, "",
                                    "malformed YAML: " + e.msg, ""});
  }
}

// Line-oriented view of the text being edited.
struct Text {
  const std::string& s;
  std::vector<size_t> starts;

  explicit Text(const std::string& text) : s(text) {
    starts.push_back(0);
    for (size_t i = 0; i < s.size(); ++i)
      if (s[i] == '\n') starts.push_back(i + 1);
  }
  size_t lines() const { return starts.size(); }
  size_t offset(const YAML::Mark& m) const {
    return starts[static_cast<size_t>(m.line)] + static_cast<size_t>(m.column);
  }
  size_t line_end(size_t line) const {
    size_t e = line + 1 < starts.size() ? starts[line + 1] - 1 : s.size();
    if (e > starts[line] && s[e - 1] == '\r') --e;
    return e;
  }
  int indent(size_t line) const {
    size_t i = starts[line];
    while (i < line_end(line) && s[i] == ' ') ++i;
    return static_cast<int>(i - starts[line]);
  }
  bool blank_or_comment(size_t line) const {
    size_t i = starts[line] + static_cast<size_t>(indent(line));
    return i >= line_end(line) || s[i] == '#';
  }
  // The last line of a block that follows `line`: lines indented more than `col`, and, when
  // `dash_at_col`, `- ` items at `col` (a block list may sit at its key's indentation).
  // Blank and comment lines count only when more of the block follows them.
  size_t block_last_line(size_t line, int col, bool dash_at_col) const {
    size_t last = line;
    for (size_t l = line + 1; l < lines(); ++l) {
      if (blank_or_comment(l)) continue;
      int ind = indent(l);
      size_t at = starts[l] + static_cast<size_t>(ind);
      bool dash =
          dash_at_col && ind == col && s[at] == '-' && (at + 1 >= line_end(l) || s[at + 1] == ' ');
      if (ind > col || dash)
        last = l;
      else
        break;
    }
    return last;
  }
  // End of a scalar that starts at `pos`.
  size_t scalar_end(size_t pos, bool in_flow) const {
    char q = s[pos];
    if (q == '"' || q == '\'') {
      for (size_t i = pos + 1; i < s.size(); ++i) {
        if (q == '"' && s[i] == '\\') {
          ++i;
        } else if (s[i] == q) {
          if (q == '\'' && i + 1 < s.size() && s[i + 1] == '\'') {
            ++i;
            continue;
          }
          return i + 1;
        }
      }
      return s.size();
    }
    size_t i = pos;
    while (i < s.size() && s[i] != '\n' && s[i] != '\r') {
      if (in_flow && (s[i] == ',' || s[i] == ']' || s[i] == '}')) break;
      if (s[i] == '#' && i > pos && (s[i - 1] == ' ' || s[i - 1] == '\t')) break;
      ++i;
    }
    while (i > pos && (s[i - 1] == ' ' || s[i - 1] == '\t')) --i;
    return i;
  }
  // End (one past the closing bracket) of a flow collection starting at `pos`.
  size_t flow_end(size_t pos) const {
    int depth = 0;
    for (size_t i = pos; i < s.size(); ++i) {
      char c = s[i];
      if (c == '"' || c == '\'') {
        i = scalar_end(i, true) - 1;
      } else if (c == '[' || c == '{') {
        ++depth;
      } else if (c == ']' || c == '}') {
        if (--depth == 0) return i + 1;
      } else if (c == '#' && i > 0 && s[i - 1] == ' ') {
        while (i < s.size() && s[i] != '\n') ++i;
      }
    }
    return s.size();
  }
  // One past the ':' that follows the key starting at `pos`.
  size_t after_colon(size_t pos) const {
    size_t i = pos;
    if (s[i] == '"' || s[i] == '\'') i = scalar_end(i, true);
    while (i < s.size() &&
           !(s[i] == ':' && (i + 1 >= s.size() || s[i + 1] == ' ' || s[i + 1] == '\n' ||
                             s[i + 1] == '\r' || s[i + 1] == ',' || s[i + 1] == '}')))
      ++i;
    return i + 1;
  }
};

struct Edit {
  size_t begin, end;
  std::string text;
};

std::string quote_like(const std::string& old_text, const Assignment& a) {
  char q = old_text.empty() ? 0 : old_text[0];
  if ((q != '"' && q != '\'') || !a.value.IsScalar() ||
      scalar_kind(a.value) != ScalarKind::String || a.value_text[0] == '"' ||
      a.value_text[0] == '\'')
    return a.value_text;
  const std::string& v = a.value.Scalar();
  if (q == '\'') {
    std::string out = "'";
    for (char c : v) out += c == '\'' ? std::string("''") : std::string(1, c);
    return out + "'";
  }
  YAML::Emitter e;
  e << YAML::DoubleQuoted << v;
  return e.c_str();
}

// Nested block text for keys that do not exist yet: `\n<pad>b:\n<pad+2>c: value`.
std::string nested_block(const std::vector<KeySegment>& keys, size_t from, int indent,
                         const std::string& value) {
  std::string out;
  for (size_t i = from; i < keys.size(); ++i) {
    out.append("\n").append(static_cast<size_t>(indent), ' ').append(keys[i].key).append(":");
    indent += 2;
  }
  return out + " " + value;
}

std::string nested_flow(const std::vector<KeySegment>& keys, size_t from,
                        const std::string& value) {
  std::string out = keys[from].key + ": ";
  if (from + 1 == keys.size()) return out + value;
  return out + "{" + nested_flow(keys, from + 1, value) + "}";
}

// The text edit for one assignment on the current text.
Edit plan(const std::string& src, const std::string& file, const Assignment& a) {
  Text t(src);
  YAML::Node root = parse(src, file);
  const std::string key = join_key_path(a.path);
  auto fail = [&](const std::string& msg, const std::string& allowed = "") -> ConfigError {
    return ConfigError(file, 0, key, msg, allowed);
  };

  YAML::Node cur = root;                           // deepest existing node
  YAML::Node key_node(YAML::NodeType::Undefined);  // its key when it is a map value
  bool cur_in_flow = false, parent_flow = false;
  size_t i = 0;
  std::string prefix;
  for (; i < a.path.size(); ++i) {
    const KeySegment& seg = a.path[i];
    bool flow = cur.IsDefined() && (cur.IsMap() || cur.IsSequence()) &&
                cur.Style() == YAML::EmitterStyle::Flow;
    if (seg.index >= 0) {
      if (!cur.IsSequence()) throw fail("no list " + prefix, prefix + " is " + describe_value(cur));
      if (static_cast<size_t>(seg.index) >= cur.size())
        throw fail("no list element " + child_index(prefix, seg.index),
                   "the list has " + std::to_string(cur.size()) + " elements");
      YAML::Node next = cur[seg.index];
      key_node.reset(YAML::Node(YAML::NodeType::Undefined));
      cur.reset(next);
    } else {
      if (!cur.IsMap()) break;
      YAML::Node found_key(YAML::NodeType::Undefined), found_value;
      for (auto it = cur.begin(); it != cur.end(); ++it) {
        if (it->first.Scalar() == seg.key) {
          found_key.reset(it->first);
          found_value.reset(it->second);
        }
      }
      if (!found_key.IsDefined()) break;
      key_node.reset(found_key);
      cur.reset(found_value);
    }
    parent_flow = cur_in_flow || flow;
    cur_in_flow = parent_flow;
    prefix = seg.index >= 0 ? child_index(prefix, seg.index) : child_key(prefix, seg.key);
  }

  if (i == a.path.size()) {
    // Replace an existing value.
    bool in_flow = parent_flow;
    if (cur.IsNull()) {
      if (!key_node.IsDefined())
        throw fail("cannot edit an empty list element", "give it a value first");
      size_t at = t.after_colon(t.offset(key_node.Mark()));
      size_t v = at;
      while (v < src.size() && src[v] == ' ') ++v;
      size_t e = t.scalar_end(v, in_flow);
      if (e > v && src[v] != '#') return {v, e, a.value_text};
      return {at, at, " " + a.value_text};
    }
    size_t start = t.offset(cur.Mark());
    bool block_scalar = cur.IsScalar() && (src[start] == '|' || src[start] == '>');
    if (cur.IsScalar() && !block_scalar) {
      size_t e = t.scalar_end(start, in_flow);
      return {start, e, quote_like(src.substr(start, e - start), a)};
    }
    if (cur.Style() == YAML::EmitterStyle::Flow && !block_scalar)
      return {start, t.flow_end(start), a.value_text};
    // A block map, list or block scalar: everything up to the end of its block goes.
    if (key_node.IsDefined()) {
      size_t kline = static_cast<size_t>(key_node.Mark().line);
      size_t last = t.block_last_line(block_scalar ? static_cast<size_t>(cur.Mark().line) : kline,
                                      key_node.Mark().column, cur.IsSequence());
      return {t.after_colon(t.offset(key_node.Mark())), t.line_end(last), " " + a.value_text};
    }
    size_t last =
        t.block_last_line(static_cast<size_t>(cur.Mark().line), cur.Mark().column - 1, false);
    return {start, t.line_end(last), a.value_text};
  }

  // Add a new key (and the maps above it) under the map `cur`.
  for (size_t j = i; j < a.path.size(); ++j)
    if (a.path[j].index >= 0)
      throw fail(
          "no list " + join_key_path({a.path.begin(), a.path.begin() + static_cast<long>(j)}),
          "lists can only be edited at existing indices");
  if (!cur.IsDefined() || (cur.IsNull() && !key_node.IsDefined())) {
    // Empty document: append at the end.
    std::string tail = nested_block(a.path, i, 0, a.value_text).substr(1) + "\n";
    bool nl = src.empty() || src.back() == '\n';
    return {src.size(), src.size(), (nl ? "" : "\n") + tail};
  }
  if (cur.IsNull()) {  // `key:` with no value becomes a map
    size_t at = t.after_colon(t.offset(key_node.Mark()));
    if (parent_flow) return {at, at, " {" + nested_flow(a.path, i, a.value_text) + "}"};
    return {at, at, nested_block(a.path, i, key_node.Mark().column + 2, a.value_text)};
  }
  if (!cur.IsMap())
    throw fail("cannot add keys under " + prefix,
               prefix + " is " + describe_value(cur) + ", not a map");
  if (cur.Style() == YAML::EmitterStyle::Flow) {
    size_t start = t.offset(cur.Mark());
    size_t close = t.flow_end(start) - 1;
    size_t k = close;
    while (k > start && (src[k - 1] == ' ' || src[k - 1] == '\n')) --k;
    bool empty = cur.size() == 0;
    return {k, k, (empty ? "" : ", ") + nested_flow(a.path, i, a.value_text)};
  }
  // Block map: after its last line, at the indentation of its keys.
  YAML::Node first_key = cur.begin()->first;
  int col = first_key.Mark().column;
  size_t last = t.block_last_line(static_cast<size_t>(first_key.Mark().line), col - 1, false);
  return {t.line_end(last), t.line_end(last), nested_block(a.path, i, col, a.value_text)};
}

void set_value(YAML::Node root, const std::vector<KeySegment>& path, const YAML::Node& value) {
  YAML::Node cur = root;
  for (size_t i = 0; i + 1 < path.size(); ++i) {
    const KeySegment& seg = path[i];
    YAML::Node next;
    if (seg.index >= 0) {
      next.reset(cur[seg.index]);
    } else {
      const YAML::Node& c = cur;
      YAML::Node got = c[seg.key];
      if (!got.IsDefined() || got.IsNull()) cur[seg.key] = YAML::Node(YAML::NodeType::Map);
      next.reset(c[seg.key]);
    }
    cur.reset(next);
  }
  if (path.back().index >= 0)
    cur[path.back().index] = value;
  else
    cur[path.back().key] = value;
}

}  // namespace

std::string set_in_text(const std::string& text, const std::string& file,
                        const std::vector<std::string>& assignments) {
  YAML::Node expected = YAML::Clone(parse(text, file));
  if (!expected.IsDefined() || expected.IsNull()) expected = YAML::Node(YAML::NodeType::Map);
  std::string out = text;
  for (const auto& s : assignments) {
    Assignment a = parse_assignment(s, file);
    Edit e = plan(out, file, a);
    out = out.substr(0, e.begin) + e.text + out.substr(e.end);
    YAML::Node now;
    try {
      now = YAML::Load(out);
    } catch (const YAML::Exception& ex) {
      throw ConfigError(file, 0, s, "the edit would break the file: " + ex.msg,
                        "quote the value, e.g. key='text'");
    }
    set_value(expected, a.path, a.value);
    // The edited text must mean exactly the old document plus this assignment.
    if (yaml_text(now) != yaml_text(expected))
      throw ConfigError(file, 0, s, "cannot apply this edit safely",
                        "the result would read as " + yaml_text(now));
  }
  return out;
}

void set_in_file(const std::filesystem::path& path, const std::vector<std::string>& assignments,
                 const std::function<void(const std::string& new_text)>& validate) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw ConfigError(path.string(), 0, "", "cannot read config", std::strerror(errno));
  std::ostringstream ss;
  ss << in.rdbuf();
  std::string updated = set_in_text(ss.str(), path.string(), assignments);
  if (validate) validate(updated);
  io::write_file_atomic(path, updated);
}

}  // namespace oar
