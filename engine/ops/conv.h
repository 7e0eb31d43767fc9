#pragma once
// N-d convolution (1-3 spatial dims) on oneDNN: stride, padding (symmetric or per-side),
// dilation and groups (depthwise when groups == channels).
#include <vector>

#include "engine/tensor/tensor.h"

namespace oar {

struct ConvParams {
  std::vector<int64_t> stride;    // one per spatial dim (empty: all 1)
  std::vector<int64_t> padding;   // one per spatial dim, or 2 per dim: begins then ends (ONNX)
  std::vector<int64_t> dilation;  // one per spatial dim (empty: all 1)
  int64_t groups = 1;
};

// x [N, C, *spatial], weight [O, C/groups, *kernel], bias [O] or undefined.
Tensor conv(const Tensor& x, const Tensor& weight, const Tensor& bias, const ConvParams& p);
Tensor conv1d(const Tensor& x, const Tensor& weight, const Tensor& bias = Tensor(),
              int64_t stride = 1, int64_t padding = 0, int64_t dilation = 1, int64_t groups = 1);
Tensor conv2d(const Tensor& x, const Tensor& weight, const Tensor& bias = Tensor(),
              std::vector<int64_t> stride = {1, 1}, std::vector<int64_t> padding = {0, 0},
              std::vector<int64_t> dilation = {1, 1}, int64_t groups = 1);
Tensor conv3d(const Tensor& x, const Tensor& weight, const Tensor& bias = Tensor(),
              std::vector<int64_t> stride = {1, 1, 1}, std::vector<int64_t> padding = {0, 0, 0},
              std::vector<int64_t> dilation = {1, 1, 1}, int64_t groups = 1);

// Channels-last: a 4-D [N, C, H, W] tensor whose memory is NHWC (strides exactly
// {H W C, 1, W C, C}). On the CPU a 2-D convolution of a channels-last input writes a
// channels-last output, and max/avg pooling outside autograd keeps it: oneDNN's NHWC kernels run
// on the tensors as they are, with no reorder in or out. A CNN's inference trunk that starts
// channels-last (to_channels_last on its input) so skips two activation reorders per convolution.
// Every other op takes such a tensor as any strided one.
bool is_channels_last(const Tensor& t);
// t in channels-last layout (t itself when it already is one). Differentiable; t must be 4-D.
Tensor to_channels_last(const Tensor& t);
// An uninitialised channels-last tensor of shape [N, C, H, W].
Tensor empty_channels_last(const Shape& shape, DType dtype, Device device);

}  // namespace oar
