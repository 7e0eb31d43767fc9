#include "engine/nn/batch_norm.h"

#include <ostream>

#include "engine/autograd/grad_mode.h"
#include "engine/core/error.h"
#include "engine/ops/norm.h"

namespace oar::nn {

BatchNorm::BatchNorm(int64_t nd, int64_t c, const BatchNormOptions& opt)
    : spatial_dims(nd), num_features(c), options(opt) {
  OAR_CHECK(nd >= 1 && nd <= 3 && c > 0, "BatchNorm: need 1-3 spatial dims and features > 0");
  if (opt.affine) {
    weight = register_parameter("weight", ones({c}));
    bias = register_parameter("bias", zeros({c}));
  }
  if (opt.track_running_stats) {
    running_mean = register_buffer("running_mean", zeros({c}));
    running_var = register_buffer("running_var", ones({c}));
    num_batches_tracked = register_buffer("num_batches_tracked", zeros({}, DType::i64));
  }
}

std::string BatchNorm::name() const {
  return "BatchNorm" + std::to_string(spatial_dims) + "d";
}

Tensor BatchNorm::forward(const Tensor& x) {
  const bool rank_ok =
      spatial_dims == 1 ? (x.dim() == 2 || x.dim() == 3) : x.dim() == spatial_dims + 2;
  OAR_CHECK(rank_ok && x.size(1) == num_features, name(), "(", num_features, "): input of shape ",
            shape_str(x.shape()), " must be [N, ", num_features,
            spatial_dims == 1 ? "] or [N, C, L]" : ", *spatial]");
  double momentum = options.momentum;
  if (is_training() && options.track_running_stats) {
    NoGradGuard no_grad;
    const double n = num_batches_tracked.item_double() + 1;
    num_batches_tracked.fill_(n);
    if (momentum < 0) momentum = 1.0 / n;
  }
  const bool use_batch_stats = is_training() || !options.track_running_stats;
  return batch_norm(x, running_mean, running_var, weight, bias, use_batch_stats, momentum,
                    options.eps);
}

void BatchNorm::describe(std::ostream& os) const {
  os << name() << "(" << num_features << ", eps=" << options.eps
     << ", momentum=" << options.momentum << ", affine=" << options.affine
     << ", track_running_stats=" << options.track_running_stats << ")";
}

}  // namespace oar::nn
