#pragma once
// Group normalisation of [N, C, *] in num_groups groups of channels (weight ones, bias zeros).
#include "engine/nn/module.h"

namespace oar::nn {

class GroupNorm : public Module {
 public:
  GroupNorm(int64_t num_groups, int64_t num_channels, double eps = 1e-5, bool affine = true);
  Tensor forward(const Tensor& x) override;
  std::string name() const override { return "GroupNorm"; }
  void describe(std::ostream& os) const override;

  int64_t num_groups, num_channels;
  double eps;
  Tensor weight, bias;
};

}  // namespace oar::nn
