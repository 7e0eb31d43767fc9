#pragma once
// The CPU side of conv_bn_train (conv_fused.h): shared by engine/ops/conv.cpp (the op and its
// autograd node) and engine/ops/cpu/conv.cpp (oneDNN and the BN loops). Not a public API.
#include <memory>

#include "engine/ops/conv_backward.h"
#include "engine/ops/conv_fused.h"

namespace oar::cpu {

// What backward needs from the forward: the input and the convolution's output, both in the
// layouts oneDNN chose (no plain copy of either is kept), and the primitives.
struct ConvBnSaved {
  Tensor xb;  // the input in the forward primitive's source layout (x itself when that is x's)
  Tensor yb;  // the convolution's output in its destination layout
  std::shared_ptr<void> prims;
};

// out [N, O, H', W'] (contiguous f32) = act(bn(conv(x, w)) + residual) with batch statistics
// (mean, var [O]: written, var biased). gamma/beta [O] and residual (out's shape, contiguous) may
// be undefined. A depthwise conv that suits our plain loops (depthwise_conv.h) runs there and the
// BN pass reads its plain output. Returns false, having done nothing, when this path does not
// apply (the convolution's output layout is not one the BN loops read); the caller then runs the
// ops one by one.
bool conv_bn_forward(ConvBnSaved& s, const Tensor& out, const Tensor& mean, const Tensor& var,
                     const Tensor& x, const Tensor& w, const Tensor& gamma, const Tensor& beta,
                     const Tensor& residual, ConvActivation act, double eps, const ConvGeometry& g,
                     bool cache_weight);

// Gradients from gout (contiguous): each output written when defined (gx: x's shape, contiguous;
// gw: w's shape; ggamma/gbeta [O]; gres: out's shape, dL/dresidual). out: the forward's output
// when a residual went in before an activation (the activation's mask), else undefined (the
// mask is recomputed from the blocked convolution output).
void conv_bn_backward(const ConvBnSaved& s, const Tensor& gx, const Tensor& gw,
                      const Tensor& ggamma, const Tensor& gbeta, const Tensor& gres,
                      const Tensor& gout, const Tensor& out, const Tensor& w, const Tensor& mean,
                      const Tensor& var, const Tensor& gamma, const Tensor& beta,
                      ConvActivation act, double eps, const ConvGeometry& g, bool cache_weight);

}  // namespace oar::cpu
