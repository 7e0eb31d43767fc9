#pragma once
#include "engine/ops/conv.h"

namespace oar {

// The activation conv_fused applies to its sum.
enum class ConvActivation { none, relu, relu6 };
// act(conv(x, weight) + bias + residual) in one pass where the backend can (on the CPU oneDNN's
// sum and eltwise post-ops, so the output is written once instead of three times); elsewhere, or
// when residual's dtype differs from the convolution's, the same unfused ops. residual is optional
// (undefined: none) and has the output's shape. Differentiable in x, weight, bias and residual.
Tensor conv_fused(const Tensor& x, const Tensor& weight, const Tensor& bias, const ConvParams& p,
                  const Tensor& residual, ConvActivation act);

}  // namespace oar
