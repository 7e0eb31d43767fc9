#include "engine/nn/layer_norm.h"

#include <ostream>

#include "engine/core/error.h"
#include "engine/ops/norm.h"

namespace oar::nn {

LayerNorm::LayerNorm(Shape shape, double eps_, bool affine, bool with_bias)
    : normalized_shape(std::move(shape)), eps(eps_) {
  OAR_CHECK(!normalized_shape.empty() && shape_numel(normalized_shape) > 0,
            "LayerNorm: normalized_shape must be non-empty, got ", shape_str(normalized_shape));
  if (affine) {
    weight = register_parameter("weight", ones(normalized_shape));
    if (with_bias) bias = register_parameter("bias", zeros(normalized_shape));
  }
}

Tensor LayerNorm::forward(const Tensor& x) {
  const int64_t n = static_cast<int64_t>(normalized_shape.size());
  bool ok = x.dim() >= n;
  for (int64_t i = 0; ok && i < n; ++i) ok = x.size(x.dim() - n + i) == normalized_shape[i];
  OAR_CHECK(ok, "LayerNorm", shape_str(normalized_shape), ": input of shape ", shape_str(x.shape()),
            " must end in ", shape_str(normalized_shape));
  return layer_norm(x, n, weight, bias, eps);
}

void LayerNorm::describe(std::ostream& os) const {
  os << "LayerNorm(" << shape_str(normalized_shape) << ", eps=" << eps << ")";
}

}  // namespace oar::nn
