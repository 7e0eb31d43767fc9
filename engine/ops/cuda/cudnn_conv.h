#pragma once
// Convolution and batch normalisation on cuDNN's legacy API (internal to engine/ops/cuda/; pulls in
// no CUDA headers). Each call returns false when cuDNN does not take the configuration (asymmetric
// padding, a descriptor or algorithm cuDNN rejects, no workspace): the caller then runs its im2col
// path.
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

// Spatial batch normalisation of contiguous f32 x [N, C, *] (every other tensor contiguous f32
// [C] except y / gx / gy, shaped like x); scale and bias must be defined (ones / zeros stand in
// for an absent weight / bias), as must gscale and gbias. Training writes the batch mean and the
// inverse standard deviation 1 / sqrt(biased var + eps) to save_mean / save_invstd; inference
// normalises with the given mean and (biased) variance; backward takes the saved pair.
bool cudnn_batch_norm_forward_training(const Tensor& y, const Tensor& save_mean,
                                       const Tensor& save_invstd, const Tensor& x,
                                       const Tensor& scale, const Tensor& bias, double eps);
bool cudnn_batch_norm_forward_inference(const Tensor& y, const Tensor& x, const Tensor& scale,
                                        const Tensor& bias, const Tensor& mean, const Tensor& var,
                                        double eps);
bool cudnn_batch_norm_backward(const Tensor& gx, const Tensor& gscale, const Tensor& gbias,
                               const Tensor& gy, const Tensor& x, const Tensor& scale,
                               const Tensor& save_mean, const Tensor& save_invstd, double eps);

// Whether convolutions and batch normalisation try cuDNN first (default on; OAR_CUDNN=0 in the
// environment turns it off). Off: every convolution takes the im2col + cuBLAS path and batch
// normalisation oar's own kernels (tests compare both with the CPU).
bool cudnn_conv_enabled();
void set_cudnn_conv_enabled(bool on);

}  // namespace oar::cuda
