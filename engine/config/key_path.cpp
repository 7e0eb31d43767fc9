#include "engine/config/key_path.h"

#include <cctype>

namespace oar {
namespace {

bool key_char(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-';
}

}  // namespace

std::optional<std::vector<KeySegment>> parse_key_path(const std::string& s) {
  std::vector<KeySegment> out;
  size_t i = 0;
  if (s.empty()) return std::nullopt;
  while (i < s.size()) {
    size_t start = i;
    while (i < s.size() && key_char(s[i])) ++i;
    if (i == start) return std::nullopt;
    out.push_back({s.substr(start, i - start), -1});
    while (i < s.size() && s[i] == '[') {
      size_t close = s.find(']', i);
      if (close == std::string::npos || close == i + 1 || close - i > 10) return std::nullopt;
      int idx = 0;
      for (size_t k = i + 1; k < close; ++k) {
        if (!std::isdigit(static_cast<unsigned char>(s[k]))) return std::nullopt;
        idx = idx * 10 + (s[k] - '0');
      }
      out.push_back({"", idx});
      i = close + 1;
    }
    if (i == s.size()) break;
    if (s[i] != '.' || i + 1 == s.size()) return std::nullopt;
    ++i;
  }
  return out;
}

std::string join_key_path(const std::vector<KeySegment>& path) {
  std::string out;
  for (const auto& seg : path) {
    out =
        seg.index >= 0 ? child_index(out, static_cast<size_t>(seg.index)) : child_key(out, seg.key);
  }
  return out;
}

std::string child_key(const std::string& parent, const std::string& key) {
  return parent.empty() ? key : parent + "." + key;
}

std::string child_index(const std::string& parent, size_t index) {
  return parent + "[" + std::to_string(index) + "]";
}

bool key_under(const std::string& path, const std::string& prefix) {
  if (prefix.empty()) return true;
  if (path.size() < prefix.size() || path.compare(0, prefix.size(), prefix) != 0) return false;
  return path.size() == prefix.size() || path[prefix.size()] == '.' || path[prefix.size()] == '[';
}

}  // namespace oar
