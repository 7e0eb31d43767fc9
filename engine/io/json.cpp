#include "engine/io/json.h"

#include <cerrno>

#include <cmath>
#include <cstdio>
#include <cstdlib>

#include "engine/core/error.h"

namespace oar {

bool Json::as_bool() const {
  OAR_CHECK(is_bool(), "json: expected a boolean");
  return std::get<bool>(v_);
}
int64_t Json::as_int() const {
  if (is_int()) return std::get<int64_t>(v_);
  OAR_CHECK(std::holds_alternative<double>(v_), "json: expected a number");
  return static_cast<int64_t>(std::get<double>(v_));
}
double Json::as_double() const {
  if (is_int()) return static_cast<double>(std::get<int64_t>(v_));
  OAR_CHECK(std::holds_alternative<double>(v_), "json: expected a number");
  return std::get<double>(v_);
}
const std::string& Json::as_string() const {
  OAR_CHECK(is_string(), "json: expected a string");
  return std::get<std::string>(v_);
}
const Json::Array& Json::as_array() const {
  OAR_CHECK(is_array(), "json: expected an array");
  return std::get<Array>(v_);
}
Json::Array& Json::as_array() {
  OAR_CHECK(is_array(), "json: expected an array");
  return std::get<Array>(v_);
}
const Json::Object& Json::as_object() const {
  OAR_CHECK(is_object(), "json: expected an object");
  return std::get<Object>(v_);
}

Json& Json::operator[](const std::string& key) {
  if (is_null()) v_ = Object{};
  OAR_CHECK(is_object(), "json: [\"", key, "\"] on a non-object");
  auto& o = std::get<Object>(v_);
  for (auto& [k, v] : o)
    if (k == key) return v;
  o.emplace_back(key, Json());
  return o.back().second;
}

const Json* Json::find(const std::string& key) const {
  if (!is_object()) return nullptr;
  for (const auto& [k, v] : std::get<Object>(v_))
    if (k == key) return &v;
  return nullptr;
}

const Json& Json::at(const std::string& key) const {
  const Json* j = find(key);
  OAR_CHECK(j != nullptr, "json: missing key \"", key, "\"");
  return *j;
}

void Json::push_back(Json v) {
  if (is_null()) v_ = Array{};
  OAR_CHECK(is_array(), "json: push_back on a non-array");
  std::get<Array>(v_).push_back(std::move(v));
}

size_t Json::size() const {
  if (is_array()) return std::get<Array>(v_).size();
  if (is_object()) return std::get<Object>(v_).size();
  return 0;
}

namespace {
void escape(std::string& out, const std::string& s) {
  out += '"';
  for (unsigned char c : s) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      case '\b':
        out += "\\b";
        break;
      case '\f':
        out += "\\f";
        break;
      default:
        if (c < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", c);
          out += buf;
        } else {
          out += static_cast<char>(c);
        }
    }
  }
  out += '"';
}
}  // namespace

void Json::dump_to(std::string& out, int indent, int level) const {
  auto newline = [&](int l) {
    if (indent <= 0) return;
    out += '\n';
    out.append(static_cast<size_t>(indent * l), ' ');
  };
  if (is_null()) {
    out += "null";
  } else if (is_bool()) {
    out += std::get<bool>(v_) ? "true" : "false";
  } else if (is_int()) {
    out += std::to_string(std::get<int64_t>(v_));
  } else if (std::holds_alternative<double>(v_)) {
    const double d = std::get<double>(v_);
    if (!std::isfinite(d)) {
      out += "null";  // JSON has no NaN/Inf
    } else {
      char buf[32];
      std::snprintf(buf, sizeof buf, "%.17g", d);
      // Prefer the shortest representation that round-trips.
      for (int p = 6; p < 17; ++p) {
        char s[32];
        std::snprintf(s, sizeof s, "%.*g", p, d);
        if (std::strtod(s, nullptr) == d) {
          std::snprintf(buf, sizeof buf, "%s", s);
          break;
        }
      }
      out += buf;
    }
  } else if (is_string()) {
    escape(out, std::get<std::string>(v_));
  } else if (is_array()) {
    const auto& a = std::get<Array>(v_);
    out += '[';
    for (size_t i = 0; i < a.size(); ++i) {
      if (i) out += indent > 0 ? "," : ", ";
      newline(level + 1);
      a[i].dump_to(out, indent, level + 1);
    }
    if (!a.empty()) newline(level);
    out += ']';
  } else {
    const auto& o = std::get<Object>(v_);
    out += '{';
    for (size_t i = 0; i < o.size(); ++i) {
      if (i) out += indent > 0 ? "," : ", ";
      newline(level + 1);
      escape(out, o[i].first);
      out += ": ";
      o[i].second.dump_to(out, indent, level + 1);
    }
    if (!o.empty()) newline(level);
    out += '}';
  }
}

std::string Json::dump(int indent) const {
  std::string out;
  dump_to(out, indent, 0);
  return out;
}

namespace {
struct Parser {
  const std::string& s;
  const std::string& where;
  size_t i = 0;

  [[noreturn]] void fail(const char* what) {
    OAR_FAIL(where, ": malformed JSON at byte ", i, ": ", what);
  }
  void ws() {
    while (i < s.size() && (s[i] == ' ' || s[i] == '\n' || s[i] == '\r' || s[i] == '\t')) ++i;
  }
  bool eat(char c) {
    ws();
    if (i < s.size() && s[i] == c) {
      ++i;
      return true;
    }
    return false;
  }
  void expect(char c) {
    if (!eat(c)) fail((std::string("expected '") + c + "'").c_str());
  }
  static void utf8(std::string& out, uint32_t cp) {
    if (cp < 0x80) {
      out += static_cast<char>(cp);
    } else if (cp < 0x800) {
      out += static_cast<char>(0xc0 | (cp >> 6));
      out += static_cast<char>(0x80 | (cp & 0x3f));
    } else if (cp < 0x10000) {
      out += static_cast<char>(0xe0 | (cp >> 12));
      out += static_cast<char>(0x80 | ((cp >> 6) & 0x3f));
      out += static_cast<char>(0x80 | (cp & 0x3f));
    } else {
      out += static_cast<char>(0xf0 | (cp >> 18));
      out += static_cast<char>(0x80 | ((cp >> 12) & 0x3f));
      out += static_cast<char>(0x80 | ((cp >> 6) & 0x3f));
      out += static_cast<char>(0x80 | (cp & 0x3f));
    }
  }
  uint32_t hex4() {
    if (i + 4 > s.size()) fail("truncated \\u escape");
    uint32_t v = 0;
    for (int k = 0; k < 4; ++k) {
      char c = s[i++];
      v <<= 4;
      if (c >= '0' && c <= '9')
        v |= c - '0';
      else if (c >= 'a' && c <= 'f')
        v |= c - 'a' + 10;
      else if (c >= 'A' && c <= 'F')
        v |= c - 'A' + 10;
      else
        fail("bad \\u escape");
    }
    return v;
  }
  std::string str() {
    expect('"');
    std::string out;
    while (true) {
      if (i >= s.size()) fail("unterminated string");
      char c = s[i++];
      if (c == '"') break;
      if (c == '\\') {
        if (i >= s.size()) fail("unterminated escape");
        char e = s[i++];
        switch (e) {
          case '"':
            out += '"';
            break;
          case '\\':
            out += '\\';
            break;
          case '/':
            out += '/';
            break;
          case 'b':
            out += '\b';
            break;
          case 'f':
            out += '\f';
            break;
          case 'n':
            out += '\n';
            break;
          case 'r':
            out += '\r';
            break;
          case 't':
            out += '\t';
            break;
          case 'u': {
            uint32_t cp = hex4();
            if (cp >= 0xd800 && cp < 0xdc00 && i + 1 < s.size() && s[i] == '\\' &&
                s[i + 1] == 'u') {
              i += 2;
              uint32_t lo = hex4();
              cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
            }
            utf8(out, cp);
            break;
          }
          default:
            fail("bad escape");
        }
      } else {
        out += c;
      }
    }
    return out;
  }
  Json value(int depth) {
    if (depth > 256) fail("nesting too deep");
    ws();
    if (i >= s.size()) fail("unexpected end");
    char c = s[i];
    if (c == '{') {
      ++i;
      Json o = Json::object();
      if (eat('}')) return o;
      do {
        ws();
        std::string k = str();
        if (o.find(k)) fail(("duplicate key \"" + k + "\"").c_str());
        expect(':');
        o[k] = value(depth + 1);
      } while (eat(','));
      expect('}');
      return o;
    }
    if (c == '[') {
      ++i;
      Json a = Json::array();
      if (eat(']')) return a;
      do a.push_back(value(depth + 1));
      while (eat(','));
      expect(']');
      return a;
    }
    if (c == '"') return Json(str());
    if (s.compare(i, 4, "true") == 0) {
      i += 4;
      return Json(true);
    }
    if (s.compare(i, 5, "false") == 0) {
      i += 5;
      return Json(false);
    }
    if (s.compare(i, 4, "null") == 0) {
      i += 4;
      return Json();
    }
    size_t start = i;
    bool is_float = false;
    if (s[i] == '-') ++i;
    while (i < s.size() && ((s[i] >= '0' && s[i] <= '9') || s[i] == '.' || s[i] == 'e' ||
                            s[i] == 'E' || s[i] == '+' || s[i] == '-')) {
      if (s[i] == '.' || s[i] == 'e' || s[i] == 'E') is_float = true;
      ++i;
    }
    if (start == i || (i == start + 1 && s[start] == '-')) fail("unexpected character");
    const std::string num = s.substr(start, i - start);
    char* end = nullptr;
    if (!is_float) {
      errno = 0;
      long long v = std::strtoll(num.c_str(), &end, 10);
      if (end && *end == '\0') {
        if (errno == ERANGE) fail(("integer " + num + " out of range").c_str());
        return Json(static_cast<int64_t>(v));
      }
    }
    double d = std::strtod(num.c_str(), &end);
    if (!end || *end != '\0') fail("bad number");
    return Json(d);
  }
};
}  // namespace

Json Json::parse(const std::string& text, const std::string& where) {
  Parser p{text, where};
  Json v = p.value(0);
  p.ws();
  if (p.i != text.size()) p.fail("trailing characters");
  return v;
}

}  // namespace oar
