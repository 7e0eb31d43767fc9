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

// BatchNorm's parameters and buffers for conv_bn_train (all optional: undefined gamma/beta mean
// 1/0; running statistics, when given, are updated in place as batch_norm does in training).
struct BatchNormArgs {
  Tensor weight, bias, running_mean, running_var;
  double momentum = 0.1, eps = 1e-5;
};
// act(batch_norm(conv(x, weight, no bias), training) + residual): a CNN's conv -> BN [-> add]
// [-> ReLU | ReLU6] in training mode as one autograd node. On the CPU (f32, 2-D, no autocast) the
// convolution's output stays in oneDNN's blocked layout: the BN pass reads it there and writes
// the plain output with the residual and activation applied, and backward writes dL/dy straight
// into the layout the backward convolutions want, keeping only the blocked input and output
// (three activation reorders fewer per convolution, and no separate BN, add or activation
// passes). Elsewhere the same ops one by one. Differentiable in x, weight, bn.weight, bn.bias and
// residual.
Tensor conv_bn_train(const Tensor& x, const Tensor& weight, const ConvParams& p,
                     const BatchNormArgs& bn, const Tensor& residual, ConvActivation act);

}  // namespace oar
