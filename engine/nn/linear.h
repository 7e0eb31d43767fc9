#pragma once
// y = x W^T + b with W [out_features, in_features] (PyTorch layout, so checkpoints load as is).
#include "engine/nn/module.h"

namespace oar::nn {

class Linear : public Module {
 public:
  // Default init as PyTorch: W, b ~ U(-1/sqrt(in), 1/sqrt(in)); gen null: default generator.
  Linear(int64_t in_features, int64_t out_features, bool bias = true, Generator* gen = nullptr);
  // x [..., in] -> [..., out]
  Tensor forward(const Tensor& x) override;
  std::string name() const override { return "Linear"; }
  void describe(std::ostream& os) const override;

  int64_t in_features, out_features;
  Tensor weight, bias;  // bias undefined when disabled
};

}  // namespace oar::nn
