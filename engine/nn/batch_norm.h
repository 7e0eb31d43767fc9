#pragma once
// Batch normalisation over the channel dim of [N, C, *] with PyTorch's buffers (running_mean,
// running_var, num_batches_tracked) so BN checkpoints load by name.
#include <functional>

#include "engine/nn/module.h"

namespace oar::nn {

// Synchronised batch norm (distributed training, trainer.distributed.sync_batch_norm): while set,
// training-mode statistics come from every rank's batch. The function returns the sum over ranks
// of a per-channel tensor, differentiably (its backward sums gradients over ranks as well).
using CrossRankSum = std::function<Tensor(const Tensor&)>;
void set_batch_norm_cross_rank_sum(CrossRankSum sum);  // empty: per-rank statistics
// Whether a cross-rank sum is set (fused training paths then leave BatchNorm to its module).
bool batch_norm_cross_rank_sum_active();

struct BatchNormOptions {
  double eps = 1e-5;
  // Running-statistics update weight; negative: cumulative average (PyTorch's momentum=None).
  double momentum = 0.1;
  bool affine = true;
  bool track_running_stats = true;
};

class BatchNorm : public Module {
 public:
  // spatial_dims: 1 for BatchNorm1d ([N, C] or [N, C, L]), 2, 3.
  BatchNorm(int64_t spatial_dims, int64_t num_features, const BatchNormOptions& opt = {});
  Tensor forward(const Tensor& x) override;
  std::string name() const override;
  void describe(std::ostream& os) const override;

  int64_t spatial_dims, num_features;
  BatchNormOptions options;
  Tensor weight, bias;                                    // undefined unless affine
  Tensor running_mean, running_var, num_batches_tracked;  // undefined unless tracked
};

class BatchNorm1d : public BatchNorm {
 public:
  explicit BatchNorm1d(int64_t c, const BatchNormOptions& opt = {}) : BatchNorm(1, c, opt) {}
};
class BatchNorm2d : public BatchNorm {
 public:
  explicit BatchNorm2d(int64_t c, const BatchNormOptions& opt = {}) : BatchNorm(2, c, opt) {}
};
class BatchNorm3d : public BatchNorm {
 public:
  explicit BatchNorm3d(int64_t c, const BatchNormOptions& opt = {}) : BatchNorm(3, c, opt) {}
};

}  // namespace oar::nn
