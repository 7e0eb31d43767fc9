#pragma once
// The metric interface the trainer drives; implementations live in metrics/.
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "engine/train/batch.h"

namespace oar {

using Outputs = std::map<std::string, Tensor>;

class Metric {
 public:
  virtual ~Metric() = default;
  virtual std::string name() const = 0;
  virtual void reset() = 0;
  virtual void update(const Outputs& outputs, const Batch& batch) = 0;
  // Named values, e.g. {"top1", 0.91}, {"top5", 0.99}.
  virtual std::vector<std::pair<std::string, double>> compute() const = 0;
  // Sufficient statistics as numbers, so ranks can sum them (distributed evaluation).
  virtual std::vector<double> state() const = 0;
  virtual void load_state(const std::vector<double>& s) = 0;
  // Writes extra artefacts (e.g. a confusion matrix) into dir after evaluation; optional.
  virtual void write_artifacts(const std::string& dir) const {}
};

}  // namespace oar
