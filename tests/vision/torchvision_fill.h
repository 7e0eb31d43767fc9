#pragma once
// The deterministic parameter fill of scripts/golden/vision_golden.py, and its reference data
// (tests/vision/data/). The k-th state_dict entry, element i: h = (i * 2654435761 + k * 104729)
// mod 2^32, v = (h % 2001 - 1000) / 1000 in double, scaled by the entry's kind, cast to float.
#include <cmath>
#include <cstdint>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "engine/autograd/grad_mode.h"
#include "engine/nn/module.h"

namespace oar::vision::golden {

inline double pattern(int64_t i, int64_t k) {
  const int64_t h = (i * int64_t{2654435761} + k * 104729) % (int64_t{1} << 32);
  return static_cast<double>(h % 2001 - 1000) / 1000.0;
}

inline bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() &&
         s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// Fills `t` (f32, contiguous) as the k-th state entry named `name`.
inline void fill_entry(const std::string& name, Tensor& t, int64_t k) {
  if (ends_with(name, "num_batches_tracked")) return;
  float* p = t.data<float>();
  const int64_t n = t.numel();
  double scale = 1.0, shift = 0.0;
  if (ends_with(name, "running_var")) {
    scale = 0.5, shift = 1.0;
  } else if (ends_with(name, "running_mean")) {
    scale = 0.1;
  } else if (ends_with(name, "weight") && t.dim() >= 2) {
    scale = std::sqrt(6.0 / static_cast<double>(n / t.size(0)));
  } else if (ends_with(name, "weight")) {
    scale = 0.1, shift = 1.0;
  } else if (ends_with(name, "bias")) {
    scale = 0.1;
  }
  for (int64_t i = 0; i < n; ++i) {
    const double v = pattern(i, k);
    // The script computes 1 + 0.5 v, 0.1 v or v * s: keep the same operations.
    p[i] = static_cast<float>(shift != 0.0 ? shift + scale * v : v * scale);
  }
}

inline void fill_model(nn::Module& m) {
  NoGradGuard no_grad;
  int64_t k = 0;
  for (auto& [name, t] : m.state_dict()) fill_entry(name, t, k++);
}

// One state entry of a torchvision model (tests/vision/data/torchvision_state_dicts.txt).
struct ReferenceEntry {
  std::string name, dtype;
  Shape shape;
};
struct ReferenceModel {
  int64_t num_parameters = 0;
  std::vector<ReferenceEntry> entries;
};

inline std::map<std::string, ReferenceModel> read_reference_state_dicts() {
  std::map<std::string, ReferenceModel> out;
  std::ifstream in(std::string(OAR_SOURCE_DIR) + "/tests/vision/data/torchvision_state_dicts.txt");
  for (std::string line; std::getline(in, line);) {
    std::istringstream ls(line);
    std::string model, name, third, shape;
    ls >> model >> name >> third;
    if (name == "#params") {
      out[model].num_parameters = std::stoll(third);
      continue;
    }
    ls >> shape;
    ReferenceEntry e{name, third, {}};
    std::istringstream ss(shape);
    for (std::string d; std::getline(ss, d, ',');)
      if (!d.empty()) e.shape.push_back(std::stoll(d));
    out[model].entries.push_back(e);
  }
  return out;
}

}  // namespace oar::vision::golden
