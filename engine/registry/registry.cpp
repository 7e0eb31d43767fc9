#include "engine/registry/registry.h"

#include <mutex>

namespace oar {
namespace {

struct Catalogue {
  std::mutex mu;
  std::map<std::string, std::map<std::string, Schema>> kinds;
};

Catalogue& catalogue() {
  static Catalogue c;
  return c;
}

}  // namespace

ConfigError unknown_component(const std::string& kind, const std::string& name,
                              const std::vector<std::string>& known, const Origin& at,
                              const std::string& key) {
  return ConfigError(at, key, "unknown " + kind + " '" + name + "'", suggestion_text(name, known));
}

namespace registry {

const std::map<std::string, std::map<std::string, Schema>>& kinds() {
  return catalogue().kinds;
}

void declare(const Schema& schema) {
  Catalogue& c = catalogue();
  std::lock_guard<std::mutex> lock(c.mu);
  c.kinds[schema.kind][schema.name] = schema;
}

std::vector<std::string> names(const std::string& kind) {
  std::vector<std::string> out;
  auto it = kinds().find(kind);
  if (it == kinds().end()) return out;
  for (const auto& [n, s] : it->second) out.push_back(n);
  return out;
}

const Schema& schema(const std::string& kind, const std::string& name) {
  auto k = kinds().find(kind);
  if (k == kinds().end()) {
    std::vector<std::string> ks;
    for (const auto& [n, m] : kinds()) ks.push_back(n);
    throw ConfigError("", 0, "", "unknown component kind '" + kind + "'",
                      suggestion_text(kind, ks));
  }
  auto it = k->second.find(name);
  if (it == k->second.end()) throw unknown_component(kind, name, names(kind));
  return it->second;
}

std::vector<const Schema*> find(const std::string& name) {
  std::vector<const Schema*> out;
  if (size_t dot = name.find('.'); dot != std::string::npos) {
    auto k = kinds().find(name.substr(0, dot));
    if (k != kinds().end()) {
      auto it = k->second.find(name.substr(dot + 1));
      if (it != k->second.end()) out.push_back(&it->second);
    }
    return out;
  }
  for (const auto& [kind, m] : kinds()) {
    auto it = m.find(name);
    if (it != m.end()) out.push_back(&it->second);
  }
  return out;
}

}  // namespace registry
}  // namespace oar
