// oar list | model summary | version
#include <algorithm>
#include <cstdio>
#include <functional>
#include <map>
#include <sstream>

#include "apps/oar/app.h"
#include "apps/oar/commands.h"
#include "engine/autograd/grad_mode.h"
#include "engine/core/build_info.h"
#include "engine/core/context.h"
#include "engine/core/cpu_features.h"
#include "engine/core/device.h"
#include "engine/dist/process_group.h"
#include "engine/registry/registry.h"
#include "engine/train/components.h"
#include "readers/registry.h"

namespace oar::app {

int cmd_list(const std::string& what) {
  register_all();
  static const std::map<std::string, std::string> kinds{
      {"models", "model"},         {"readers", "reader"},
      {"transforms", "transform"}, {"video_transforms", "video_transform"},
      {"metrics", "metric"},       {"optimizers", "optimizer"},
      {"schedules", "lr"},         {"tasks", "task"}};
  std::vector<std::pair<std::string, std::string>> chosen;
  if (what.empty()) {
    for (const auto& kv : kinds) chosen.push_back(kv);
  } else {
    auto it = kinds.find(what);
    if (it == kinds.end()) {
      std::vector<std::string> known;
      for (const auto& kv : kinds) known.push_back(kv.first);
      throw unknown_component("list kind", what, known);
    }
    chosen.push_back(*it);
  }
  for (const auto& [plural, kind] : chosen) {
    std::printf("%s:\n", plural.c_str());
    auto k = registry::kinds().find(kind);
    if (k == registry::kinds().end() || k->second.empty()) {
      std::printf("  (none registered yet)\n");
      continue;
    }
    for (const auto& [name, s] : k->second)
      std::printf("  %-24s %s\n", name.c_str(), s.doc.c_str());
  }
  return 0;
}

int cmd_model_summary(const RunOptions& o) {
  register_all();
  Source s = load_source(o.config, o.overrides);
  Config& c = s.config;
  validate_all(c);
  Built b = build(c, 0);
  // One sample from the first data mode present gives the input shapes.
  std::string mode;
  for (const char* m : {"infer", "test", "valid", "train"})
    if (readers::has_mode(c, m)) {
      mode = m;
      break;
    }
  if (mode.empty()) throw c.error("data", "no data section to take an input shape from");
  Config one = c;
  one.set("data." + mode + ".batch_size", YAML::Node(1), Origin{"summary", 0, 0, "override"});
  one.set("data." + mode + ".num_workers", YAML::Node(0), Origin{"summary", 0, 0, "override"});
  auto loader = readers::make_loader(one, mode, 0);
  loader->start_epoch(0, 0);
  Batch batch;
  if (!loader->next(batch)) throw c.error("data." + mode, "no samples to take an input shape from");

  // Output shape of every module call, in call order.
  // Rows follow the module tree (pre-order), whatever order the calls complete in.
  std::map<const nn::Module*, std::pair<size_t, std::string>> names;
  for (auto& [n, m] : b.model->named_modules())
    names[m] = {names.size(), n.empty() ? "(model)" : n};
  struct Row {
    size_t order;
    std::string name, type, shape;
    int64_t params;
  };
  std::vector<Row> rows;
  {
    NoGradGuard ng;
    b.model->eval();
    nn::ForwardHookGuard hook([&](const nn::Module& m, const Tensor& out) {
      int64_t own = 0;
      for (auto& [pn, p] : m.named_parameters())
        if (pn.find('.') == std::string::npos) own += p.numel();
      auto it = names.find(&m);
      rows.push_back({it == names.end() ? names.size() : it->second.first,
                      it == names.end() ? "?" : it->second.second, m.name(), shape_str(out.shape()),
                      own});
    });
    b.task->forward(batch);
  }
  // Modules whose forward was not reached through operator() (custom signatures) still get a
  // row, with their parameters and no output shape.
  std::vector<bool> seen(names.size(), false);
  for (const Row& r : rows)
    if (r.order < seen.size()) seen[r.order] = true;
  for (const auto& [m, entry] : names) {
    if (seen[entry.first]) continue;
    int64_t own = 0;
    for (auto& [pn, p] : m->named_parameters())
      if (pn.find('.') == std::string::npos) own += p.numel();
    rows.push_back({entry.first, entry.second, m->name(), "-", own});
  }
  std::stable_sort(rows.begin(), rows.end(),
                   [](const Row& a, const Row& b) { return a.order < b.order; });
  std::string inputs;
  for (const auto& [k, t] : batch.tensors) inputs += k + " " + shape_str(t.shape()) + "  ";
  std::printf("model %s, input %s\n\n", c.get<std::string>("model.name").c_str(), inputs.c_str());
  std::printf("%-36s %-16s %-22s %12s\n", "layer", "type", "output shape", "parameters");
  std::printf("%s\n", std::string(89, '-').c_str());
  for (const Row& r : rows)
    std::printf("%-36s %-16s %-22s %12ld\n", r.name.c_str(), r.type.c_str(), r.shape.c_str(),
                static_cast<long>(r.params));
  int64_t trainable = 0, buffers = 0;
  for (auto& [n, p] : b.model->named_parameters()) trainable += p.numel();
  for (auto& [n, t] : b.model->named_buffers()) buffers += t.numel();
  std::printf("%s\n", std::string(89, '-').c_str());
  std::printf("parameters: %ld (%.2f MB as f32); buffers: %ld values\n",
              static_cast<long>(trainable), trainable * 4.0 / (1 << 20),
              static_cast<long>(buffers));
  return 0;
}

int cmd_version() {
  std::printf("oar %s\n", OAR_VERSION);
#ifdef NDEBUG
  std::printf("build: release\n");
#else
  std::printf("build: debug\n");
#endif
#ifdef OAR_WITH_CUDA
  std::printf("cuda backend: built in; device available: %s\n", cuda_available() ? "yes" : "no");
#else
  std::printf("cuda backend: not built\n");
#endif
  std::printf("oneDNN: %s\n", onednn_version().c_str());
  std::printf("distributed: gloo: %s, nccl: %s\n", dist::gloo_available() ? "yes" : "no",
              dist::nccl_available() ? "yes" : "no");
  const CpuFeatures& f = cpu_features();
  std::printf("cpu: %s, %d logical cores\n", f.brand.c_str(), f.logical_cores);
  std::printf("cpu features: %s\n", cpu_features_string().c_str());
  std::printf("threads: %d\n", num_threads());
  return 0;
}

}  // namespace oar::app
