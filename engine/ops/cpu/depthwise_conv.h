#pragma once
// Depthwise 2-D convolution (groups == channels == outputs) on plain NCHW f32 memory with our
// own loops. oneDNN's depthwise kernels want blocked layouts, so each call reordered the
// activations in and out (7 reorders per fwd+bwd) for ~1 flop per byte of real work.
// Include only from engine/ops/cpu/*.cpp.
#include "engine/ops/conv_backward.h"
#include "engine/tensor/tensor.h"

namespace oar::cpu {

// True when x [N, C, H, W] and w [C, 1, KH, KW] (contiguous f32) suit these loops.
bool plain_depthwise(const Tensor& x, const Tensor& w, const ConvGeometry& g);

// out [N, C, OH, OW] (contiguous) = depthwise conv of x with w (+ bias [C]).
void depthwise_forward(const Tensor& out, const Tensor& x, const Tensor& w, const Tensor& bias,
                       const ConvGeometry& g);
// gx [N, C, H, W] (contiguous) from gy [N, C, OH, OW] (contiguous).
void depthwise_backward_data(const Tensor& gx, const Tensor& gy, const Tensor& w,
                             const ConvGeometry& g);
// gw [C, 1, KH, KW] and, when defined, gb [C] (both contiguous).
void depthwise_backward_weights(const Tensor& gw, const Tensor& gb, const Tensor& x,
                                const Tensor& gy, const ConvGeometry& g);

}  // namespace oar::cpu
