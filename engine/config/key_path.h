#pragma once
// Dotted key paths: `data.train.seg_num`, `model.layers[1].width`.
#include <optional>
#include <string>
#include <vector>

namespace oar {

struct KeySegment {
  std::string key;  // map key; empty for a list index
  int index = -1;   // list index; -1 for a map key
};

// Parses `a.b[1].c`; nullopt when the text is not a key path. Keys are [A-Za-z0-9_-]+.
std::optional<std::vector<KeySegment>> parse_key_path(const std::string& dotted);
std::string join_key_path(const std::vector<KeySegment>& path);
// Child path of `parent` (which may be empty) for a map key or a list index.
std::string child_key(const std::string& parent, const std::string& key);
std::string child_index(const std::string& parent, size_t index);
// True when `path` is `prefix` or lies under it (`prefix.x`, `prefix[3]`).
bool key_under(const std::string& path, const std::string& prefix);

}  // namespace oar
