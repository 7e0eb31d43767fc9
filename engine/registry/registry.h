#pragma once
// Components by kind and name. Each entry is a Schema (what keys it takes) and a factory. A
// domain library registers its components from an explicit init function (for example
// `oar::vision::register_components()` called by the app), never from static initializers,
// which a static library would silently drop.
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "engine/config/config.h"
#include "engine/config/schema.h"

namespace oar::registry {

// Every schema registered so far: kind -> name -> schema (for `oar list`, `oar config doc`).
const std::map<std::string, std::map<std::string, Schema>>& kinds();
// Adds or replaces a schema in the catalogue (Registry::add calls this).
void declare(const Schema& schema);
// The schema of kind/name; ConfigError "unknown model 'resnt50' (did you mean 'resnet50'?
// known: ...)" when absent.
const Schema& schema(const std::string& kind, const std::string& name);
// Names registered for a kind, sorted.
std::vector<std::string> names(const std::string& kind);
// All schemas with this name, any kind (for `oar config doc NAME`); `kind.name` also works.
std::vector<const Schema*> find(const std::string& name);

}  // namespace oar::registry

namespace oar {

// The message for an unknown name, located at `at` / `key` when given.
ConfigError unknown_component(const std::string& kind, const std::string& name,
                              const std::vector<std::string>& known, const Origin& at = {},
                              const std::string& key = "");

// One registry per kind and base type, e.g. `Registry<Model>` for kind "model". A factory
// receives the validated config and the section its keys sit in, plus any extra arguments.
template <typename Base, typename... Args>
class Registry {
 public:
  using Factory =
      std::function<std::shared_ptr<Base>(const Config&, const std::string& section, Args...)>;

  explicit Registry(std::string kind) : kind_(std::move(kind)) {}

  const std::string& kind() const { return kind_; }

  // schema.kind is set to this registry's kind; schema.name is the registered name.
  void add(Schema schema, Factory factory) {
    schema.kind = kind_;
    registry::declare(schema);
    std::string name = schema.name;
    entries_[name] = Entry{std::move(schema), std::move(factory)};
  }

  bool contains(const std::string& name) const { return entries_.count(name) > 0; }

  std::vector<std::string> names() const {
    std::vector<std::string> out;
    for (const auto& [n, e] : entries_) out.push_back(n);
    return out;
  }

  const Schema& schema(const std::string& name) const { return entry(name, {}, "").schema; }

  // Validates `section` against name's schema (filling defaults; a `name` key is allowed),
  // then builds.
  std::shared_ptr<Base> create(const std::string& name, Config& config, const std::string& section,
                               Args... args) const {
    const Entry& e = entry(name, config.location(section), section);
    validate(config, section, e.schema, {"name"});
    return e.factory(config, section, args...);
  }

  // As create(), the name read from `<section>.name` (PaddleVideo's `name: TSN`).
  std::shared_ptr<Base> create_from(Config& config, const std::string& section,
                                    Args... args) const {
    const std::string name_key = "name";
    std::string key = section.empty() ? name_key : section + "." + name_key;
    if (!config.has(key)) {
      std::string known;
      for (const auto& n : names()) known += (known.empty() ? "" : ", ") + n;
      throw config.error(key, "missing required key: which " + kind_ + " to use",
                         "known: " + (known.empty() ? std::string("none") : known));
    }
    std::string name = config.get<std::string>(key);
    const Entry& e = entry(name, config.location(key), key);
    validate(config, section, e.schema, {name_key});
    return e.factory(config, section, args...);
  }

 private:
  struct Entry {
    Schema schema;
    Factory factory;
  };

  const Entry& entry(const std::string& name, const Origin& at, const std::string& key) const {
    auto it = entries_.find(name);
    if (it == entries_.end()) throw unknown_component(kind_, name, names(), at, key);
    return it->second;
  }

  std::string kind_;
  std::map<std::string, Entry> entries_;
};

}  // namespace oar
