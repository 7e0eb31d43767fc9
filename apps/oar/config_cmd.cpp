// oar config show | validate | doc | diff | set
#include <cstdio>
#include <iostream>

#include "apps/oar/app.h"
#include "apps/oar/commands.h"
#include "engine/config/edit.h"
#include "engine/config/schema.h"
#include "engine/registry/registry.h"
#include "engine/train/components.h"

namespace oar::app {

int cmd_config_show(const RunOptions& o, bool origins) {
  register_all();
  Source s = load_source(o.config, o.overrides);
  validate_all(s.config);
  std::cout << s.config.dump(origins);
  return 0;
}

int cmd_config_validate(const RunOptions& o) {
  register_all();
  Source s = load_source(o.config, o.overrides);
  validate_all(s.config);
  std::printf("ok: %s is valid\n", o.config.c_str());
  return 0;
}

int cmd_config_doc(const std::string& name) {
  register_all();
  if (name.empty()) {
    for (const auto& [kind, schemas] : registry::kinds())
      for (const auto& [n, s] : schemas)
        std::printf("%-10s %-24s %s\n", kind.c_str(), n.c_str(), s.doc.c_str());
    std::printf("%-10s %-24s %s\n", "section", "trainer", trainer_schema().doc.c_str());
    std::printf("%-10s %-24s %s\n", "section", "distributed", distributed_schema().doc.c_str());
    return 0;
  }
  if (name == "trainer") {
    std::cout << doc(trainer_schema());
    return 0;
  }
  if (name == "distributed") {
    std::cout << doc(distributed_schema());
    return 0;
  }
  auto found = registry::find(name);
  if (found.empty()) {
    std::vector<std::string> known{"trainer", "distributed"};
    for (const auto& [kind, schemas] : registry::kinds())
      for (const auto& [n, s] : schemas) known.push_back(n);
    throw unknown_component("component", name, known);
  }
  for (const Schema* s : found) std::cout << doc(*s) << "\n";
  return 0;
}

int cmd_config_diff(const std::string& a, const std::string& b) {
  register_all();
  Source sa = load_source(a, {}), sb = load_source(b, {});
  validate_all(sa.config);
  validate_all(sb.config);
  const std::string d = diff(sa.config, sb.config);
  std::cout << (d.empty() ? "no differences\n" : d);
  return 0;
}

int cmd_config_set(const std::string& file, const std::vector<std::string>& assignments) {
  register_all();
  set_in_file(file, assignments, [&](const std::string& text) {
    Config c = Config::from_string(text, file);
    validate_all(c);
  });
  for (const auto& a : assignments) std::printf("set %s in %s\n", a.c_str(), file.c_str());
  return 0;
}

}  // namespace oar::app
