#include "engine/nn/linear.h"

#include <ostream>

#include "engine/core/error.h"
#include "engine/nn/init.h"
#include "engine/ops/matmul.h"

namespace oar::nn {

Linear::Linear(int64_t in, int64_t out, bool with_bias, Generator* gen)
    : in_features(in), out_features(out) {
  OAR_CHECK(in > 0 && out > 0, "Linear: features must be positive, got in=", in, " out=", out);
  weight = register_parameter("weight", empty({out, in}));
  if (with_bias) bias = register_parameter("bias", empty({out}));
  init::default_linear_init(weight, bias, gen ? *gen : default_generator());
}

Tensor Linear::forward(const Tensor& x) {
  OAR_CHECK(x.dim() >= 1 && x.size(-1) == in_features, "Linear(", in_features, ", ", out_features,
            "): input of shape ", shape_str(x.shape()), " must end in ", in_features);
  return linear(x, weight, bias);
}

void Linear::describe(std::ostream& os) const {
  os << "Linear(in=" << in_features << ", out=" << out_features
     << ", bias=" << (bias.defined() ? "true" : "false") << ")";
}

}  // namespace oar::nn
