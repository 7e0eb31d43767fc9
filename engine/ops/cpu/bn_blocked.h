#pragma once
// Training batch norm (batch statistics) over a convolution's output in oneDNN's layout, fused
// with what follows it in a CNN (an optional residual and ReLU/ReLU6), for conv_bn_train: the
// convolution's output is never reordered to plain NCHW; the BN pass reads it in place and writes
// the plain result, and backward writes dL/dy straight into the layout the convolution's backward
// wants. Include only from engine/ops/cpu/*.cpp.
#include <cstdint>

#include "engine/ops/conv_fused.h"

namespace oar::cpu {

// A [N, C, HW] f32 layout in channel blocks of `block` (oneDNN's aBcd<block>b): element (n, c, s)
// sits at ((n * CB + c / block) * HW + s) * block + c % block with CB = ceil(C / block). block 1
// is plain NCHW; block == C is NHWC. Channels past C in the last block are padding.
struct BlockedLayout {
  int64_t n = 0, c = 0, hw = 0, block = 1;
  int64_t blocks() const { return (c + block - 1) / block; }
  int64_t offset(int64_t in, int64_t ic, int64_t s) const {
    return ((in * blocks() + ic / block) * hw + s) * block + ic % block;
  }
};

// y in layout `l` -> batch mean and biased variance [C] (written), and
// out (plain [N, C, HW]) = act(y * scale + shift + residual) with scale = gamma rstd and
// shift = beta - mean scale. gamma/beta/residual may be null (1, 0, none).
void bn_blocked_forward(const BlockedLayout& l, const float* y, float* mean, float* var,
                        const float* gamma, const float* beta, const float* residual, float* out,
                        ConvActivation act, double eps);

// Backward of the above. gout: dL/dout (plain). out: the forward's output (plain), used for the
// activation's mask when a residual was added (else the mask is recomputed from y). Writes dL/dy
// into gy (layout `l`, padding channels zeroed), dL/dgamma, dL/dbeta (when non-null) and
// dL/dresidual (plain, when non-null).
void bn_blocked_backward(const BlockedLayout& l, const float* y, const float* mean,
                         const float* var, const float* gamma, const float* beta, const float* gout,
                         const float* out, ConvActivation act, double eps, float* gy, float* ggamma,
                         float* gbeta, float* gresidual);

}  // namespace oar::cpu
