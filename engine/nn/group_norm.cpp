#include "engine/nn/group_norm.h"

#include <ostream>

#include "engine/core/error.h"
#include "engine/ops/norm.h"

namespace oar::nn {

GroupNorm::GroupNorm(int64_t groups, int64_t channels, double eps_, bool affine)
    : num_groups(groups), num_channels(channels), eps(eps_) {
  OAR_CHECK(groups > 0 && channels > 0 && channels % groups == 0,
            "GroupNorm: num_channels=", channels,
            " must be a positive multiple of num_groups=", groups);
  if (affine) {
    weight = register_parameter("weight", ones({channels}));
    bias = register_parameter("bias", zeros({channels}));
  }
}

Tensor GroupNorm::forward(const Tensor& x) {
  OAR_CHECK(x.dim() >= 2 && x.size(1) == num_channels, "GroupNorm(", num_groups, ", ", num_channels,
            "): input of shape ", shape_str(x.shape()), " must be [N, ", num_channels, ", *]");
  return group_norm(x, num_groups, weight, bias, eps);
}

void GroupNorm::describe(std::ostream& os) const {
  os << "GroupNorm(" << num_groups << ", " << num_channels << ", eps=" << eps << ")";
}

}  // namespace oar::nn
