#pragma once
// N-d convolution (1-3 spatial dims) on oneDNN: stride, padding (symmetric or per-side),
// dilation and groups (depthwise when groups == channels).
#include <vector>

#include "engine/tensor/tensor.h"

namespace oar {

struct ConvParams {
  std::vector<int64_t> stride;     // one per spatial dim (empty: all 1)
  std::vector<int64_t> padding;    // one per spatial dim, or 2 per dim: begins then ends (ONNX)
  std::vector<int64_t> dilation;   // one per spatial dim (empty: all 1)
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

}  // namespace oar
