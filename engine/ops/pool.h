#pragma once
// Max and average pooling over 1-3 spatial dims, adaptive and global pooling (oneDNN).
#include <vector>

#include "engine/tensor/tensor.h"

namespace oar {

struct PoolParams {
  std::vector<int64_t> kernel;    // one per spatial dim
  std::vector<int64_t> stride;    // empty: = kernel
  std::vector<int64_t> padding;   // one per dim, or begins then ends (ONNX)
  std::vector<int64_t> dilation;  // max pooling only; empty: all 1
  bool ceil_mode = false;
  bool count_include_pad = false;  // average pooling: divide by the full window
};

// x [N, C, *spatial].
Tensor max_pool(const Tensor& x, const PoolParams& p);
Tensor avg_pool(const Tensor& x, const PoolParams& p);
// Output spatial size `out` (PyTorch's adaptive windows: start=floor(i*in/out),
// end=ceil((i+1)*in/out)).
Tensor adaptive_avg_pool(const Tensor& x, const std::vector<int64_t>& out);
Tensor adaptive_max_pool(const Tensor& x, const std::vector<int64_t>& out);
// Mean over all spatial dims, keeping them as size 1 ([N, C, 1, ...]).
Tensor global_avg_pool(const Tensor& x);
Tensor global_max_pool(const Tensor& x);

}  // namespace oar
