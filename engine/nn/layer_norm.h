#pragma once
// Layer normalisation over the trailing `normalized_shape` dims (weight ones, bias zeros).
#include "engine/nn/module.h"

namespace oar::nn {

class LayerNorm : public Module {
 public:
  LayerNorm(Shape normalized_shape, double eps = 1e-5, bool elementwise_affine = true,
            bool bias = true);
  Tensor forward(const Tensor& x) override;
  std::string name() const override { return "LayerNorm"; }
  void describe(std::ostream& os) const override;

  Shape normalized_shape;
  double eps;
  Tensor weight, bias;
};

}  // namespace oar::nn
