#pragma once
// Shared pieces of the frame-based video model tests: tiny trunk options, the reference state
// dicts recorded by tests/video/golden/frame_models_golden.py, and a short SGD run.
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "engine/ops.h"
#include "engine/optim/sgd.h"
#include "video/models/video_resnet.h"

namespace oar::video::testing {

// One bottleneck per stage, 4 stem channels: features 16/32/64/128 channels.
inline VideoResNetOptions tiny_trunk() {
  VideoResNetOptions o;
  o.blocks = {1, 1, 1, 1};
  o.width = 4;
  return o;
}

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
  std::ifstream in(std::string(OAR_SOURCE_DIR) +
                   "/tests/video/golden/frame_models_state_dicts.txt");
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

// Cross-entropy loss of `model` on one fixed batch before and after `steps` SGD steps.
inline std::pair<double, double> train_steps(nn::Module& model, const Tensor& x, const Tensor& y,
                                             int steps, double lr = 0.05) {
  model.train();
  optim::SgdOptions so;
  so.lr = lr;
  so.momentum = 0.9;
  optim::SGD opt(model.parameters(), so);
  double first = 0, last = 0;
  for (int step = 0; step < steps; ++step) {
    opt.zero_grad();
    Tensor loss = cross_entropy(model(x), y);
    loss.backward();
    opt.step();
    (step == 0 ? first : last) = loss.item_double();
  }
  return {first, last};
}

inline double max_abs_diff(const Tensor& a, const Tensor& b) {
  return amax(abs(a - b)).item_double();
}

}  // namespace oar::video::testing
