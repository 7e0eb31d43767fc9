#pragma once
#include "engine/core/generator.h"
#include "engine/tensor/tensor.h"

namespace oar {

// Zeroes elements with probability p and scales the rest by 1/(1-p) when training; the mask
// comes from `gen` (the default generator when null), so runs repeat under a seed.
Tensor dropout(const Tensor& x, double p, bool training, Generator* gen = nullptr);

// layer_norm(dropout(x, p, training, gen) + residual) over the last dim with weight/bias [K]
// (either may be undefined): the tail of a post-LN transformer sublayer. Draws the same mask as
// that composition (and falls back to it off the CPU or for non-f32 inputs); on the CPU one pass
// per row computes the sum and normalises it, and backward applies the mask to the layer norm's
// input gradient (which is the residual's gradient as it is).
Tensor dropout_add_layer_norm(const Tensor& x, const Tensor& residual, const Tensor& weight,
                              const Tensor& bias, double eps, double p, bool training,
                              Generator* gen = nullptr);

}  // namespace oar
