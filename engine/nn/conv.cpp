#include "engine/nn/conv.h"

#include <ostream>

#include "engine/core/error.h"
#include "engine/nn/init.h"
#include "engine/ops/conv.h"

namespace oar::nn {

namespace {
std::vector<int64_t> per_dim(std::vector<int64_t> v, int64_t n, const char* what) {
  if (v.size() == 1) v.assign(static_cast<size_t>(n), v[0]);
  OAR_CHECK(static_cast<int64_t>(v.size()) == n, "Conv", n, "d: ", what, " needs 1 or ", n,
            " values, got ", v.size());
  return v;
}
void put_list(std::ostream& os, const std::vector<int64_t>& v) {
  os << "(";
  for (size_t i = 0; i < v.size(); ++i) os << (i ? ", " : "") << v[i];
  os << ")";
}
}  // namespace

Conv::Conv(int64_t nd, int64_t in, int64_t out, std::vector<int64_t> kernel, const ConvOptions& opt,
           Generator* gen)
    : spatial_dims(nd), in_channels(in), out_channels(out), groups(opt.groups) {
  OAR_CHECK(nd >= 1 && nd <= 3, "Conv: 1 to 3 spatial dims, got ", nd);
  kernel_size = per_dim(std::move(kernel), nd, "kernel_size");
  stride = per_dim(opt.stride, nd, "stride");
  padding = per_dim(opt.padding, nd, "padding");
  dilation = per_dim(opt.dilation, nd, "dilation");
  OAR_CHECK(in > 0 && out > 0 && groups > 0 && in % groups == 0 && out % groups == 0, "Conv", nd,
            "d: channels in=", in, " out=", out, " must be positive multiples of groups=", groups);
  Shape wshape{out, in / groups};
  for (int64_t k : kernel_size) {
    OAR_CHECK(k > 0, "Conv", nd, "d: kernel sizes must be positive");
    wshape.push_back(k);
  }
  weight = register_parameter("weight", empty(wshape));
  if (opt.bias) bias = register_parameter("bias", empty({out}));
  init::default_linear_init(weight, bias, gen ? *gen : default_generator());
}

std::string Conv::name() const {
  return "Conv" + std::to_string(spatial_dims) + "d";
}

Tensor Conv::forward(const Tensor& x) {
  OAR_CHECK(x.dim() == spatial_dims + 2 && x.size(1) == in_channels, name(), ": input must be [N, ",
            in_channels, ", ", spatial_dims, " spatial dims], got ", shape_str(x.shape()));
  return conv(x, weight, bias, ConvParams{stride, padding, dilation, groups});
}

void Conv::describe(std::ostream& os) const {
  os << name() << "(" << in_channels << ", " << out_channels << ", kernel=";
  put_list(os, kernel_size);
  os << ", stride=";
  put_list(os, stride);
  os << ", padding=";
  put_list(os, padding);
  if (groups != 1) os << ", groups=" << groups;
  os << ")";
}

}  // namespace oar::nn
