#pragma once
// A task binds a model, its loss, its metrics and its post-processing. The trainer runs
// train/eval/predict for any task.
#include <memory>
#include <vector>

#include "engine/io/json.h"
#include "engine/train/batch.h"
#include "engine/train/metric.h"

namespace oar {
namespace nn {
class Module;
}

class Task {
 public:
  virtual ~Task() = default;
  virtual nn::Module& model() = 0;
  virtual Outputs forward(const Batch& batch) = 0;
  virtual Tensor loss(const Outputs& outputs, const Batch& batch) = 0;
  // Fresh metric objects for one evaluation.
  virtual std::vector<std::unique_ptr<Metric>> metrics() const = 0;
  // One JSON record per sample of the batch.
  virtual std::vector<Json> predict(const Outputs& outputs, const Batch& batch) const = 0;
};

}  // namespace oar
