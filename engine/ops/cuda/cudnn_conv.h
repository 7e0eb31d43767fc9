#pragma once
// Convolution on cuDNN's legacy API (internal to engine/ops/cuda/; pulls in no CUDA headers).
// Each call returns false when cuDNN does not take the configuration (asymmetric padding, a
// descriptor or algorithm cuDNN rejects, no workspace): the caller then runs its im2col path.
#include "engine/ops/conv_backward.h"
#include "engine/tensor/tensor.h"

namespace oar::cuda {

// out = conv(x, w) + bias (bias undefined or broadcast along channels); x, w contiguous.
bool cudnn_conv_forward(const Tensor& out, const Tensor& x, const Tensor& w, const Tensor& bias,
                        const ConvGeometry& g);
// gx = dL/dx from gy and w (all contiguous).
bool cudnn_conv_backward_data(const Tensor& gx, const Tensor& gy, const Tensor& w,
                              const ConvGeometry& g);
// gw = dL/dw from x and gy (all contiguous, gw of x's dtype).
bool cudnn_conv_backward_filter(const Tensor& gw, const Tensor& x, const Tensor& gy,
                                const ConvGeometry& g);

// Whether convolutions try cuDNN first (default on; OAR_CUDNN=0 in the environment turns it off).
// Off: every convolution takes the im2col + cuBLAS path (tests compare both with the CPU).
bool cudnn_conv_enabled();
void set_cudnn_conv_enabled(bool on);

}  // namespace oar::cuda
