#pragma once
// N-d convolution layers with PyTorch's parameters (weight [out, in/groups, *kernel], bias [out])
// and default init.
#include <vector>

#include "engine/nn/module.h"

namespace oar::nn {

// A one-element list applies to every spatial dim.
struct ConvOptions {
  std::vector<int64_t> stride = {1};
  std::vector<int64_t> padding = {0};  // symmetric, per spatial dim
  std::vector<int64_t> dilation = {1};
  int64_t groups = 1;
  bool bias = true;
};

class Conv : public Module {
 public:
  Conv(int64_t spatial_dims, int64_t in_channels, int64_t out_channels,
       std::vector<int64_t> kernel_size, const ConvOptions& opt = {}, Generator* gen = nullptr);
  // x [N, C_in, *spatial] -> [N, C_out, *spatial_out]
  Tensor forward(const Tensor& x) override;
  std::string name() const override;
  void describe(std::ostream& os) const override;

  int64_t spatial_dims, in_channels, out_channels, groups;
  std::vector<int64_t> kernel_size, stride, padding, dilation;
  Tensor weight, bias;
};

class Conv1d : public Conv {
 public:
  Conv1d(int64_t in, int64_t out, int64_t kernel, const ConvOptions& opt = {},
         Generator* gen = nullptr)
      : Conv(1, in, out, {kernel}, opt, gen) {}
};
class Conv2d : public Conv {
 public:
  Conv2d(int64_t in, int64_t out, std::vector<int64_t> kernel, const ConvOptions& opt = {},
         Generator* gen = nullptr)
      : Conv(2, in, out, std::move(kernel), opt, gen) {}
};
class Conv3d : public Conv {
 public:
  Conv3d(int64_t in, int64_t out, std::vector<int64_t> kernel, const ConvOptions& opt = {},
         Generator* gen = nullptr)
      : Conv(3, in, out, std::move(kernel), opt, gen) {}
};

}  // namespace oar::nn
