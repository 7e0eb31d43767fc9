#pragma once
// Selection by a boolean mask.
#include "engine/tensor/tensor.h"

namespace oar {

// cond ? a : b with broadcasting; gradient flows to the chosen side.
Tensor where(const Tensor& cond, const Tensor& a, const Tensor& b);
// x with `value` where mask (broadcast to x) is true.
Tensor masked_fill(const Tensor& x, const Tensor& mask, double value);

}  // namespace oar
