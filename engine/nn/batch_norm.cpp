#include "engine/nn/batch_norm.h"

#include <ostream>

#include "engine/autograd/grad_mode.h"
#include "engine/core/error.h"
#include "engine/ops/binary.h"
#include "engine/ops/join.h"
#include "engine/ops/norm.h"
#include "engine/ops/reduce.h"
#include "engine/ops/unary.h"

namespace oar::nn {

namespace {
CrossRankSum& cross_rank_sum() {
  static CrossRankSum f;
  return f;
}

// Batch norm with statistics over all ranks: two exact passes (mean, then centred variance),
// each one cross-rank sum, composed of differentiable ops.
Tensor sync_batch_norm(const Tensor& x, BatchNorm& bn, double momentum) {
  const CrossRankSum& total = cross_rank_sum();
  const int64_t c = bn.num_features;
  Shape dims{0}, bshape(static_cast<size_t>(x.dim()), 1);
  for (int64_t d = 2; d < x.dim(); ++d) dims.push_back(d);
  bshape[1] = c;
  Tensor count = full({1}, static_cast<double>(x.numel() / c), x.dtype(), x.device());
  Tensor s1 = total(concat({sum(x, dims), count}, 0));
  Tensor n = s1.slice(0, c, c + 1);
  Tensor mean = div(s1.slice(0, 0, c), n);
  Tensor xc = sub(x, mean.reshape(bshape));
  Tensor var = div(total(sum(mul(xc, xc), dims)), n);
  Tensor y = mul(xc, rsqrt(add(var, bn.options.eps)).reshape(bshape));
  if (bn.weight.defined()) y = add(mul(y, bn.weight.reshape(bshape)), bn.bias.reshape(bshape));
  if (bn.options.track_running_stats) {
    NoGradGuard no_grad;
    const double nn = n.item_double();
    bn.running_mean.copy_(add(mul(bn.running_mean, 1 - momentum), mul(mean, momentum)));
    bn.running_var.copy_(
        add(mul(bn.running_var, 1 - momentum), mul(var, momentum * nn / std::max(1.0, nn - 1))));
  }
  return y;
}
}  // namespace

void set_batch_norm_cross_rank_sum(CrossRankSum sum) {
  cross_rank_sum() = std::move(sum);
}

bool batch_norm_cross_rank_sum_active() {
  return static_cast<bool>(cross_rank_sum());
}

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
  if (use_batch_stats && is_training() && cross_rank_sum())
    return sync_batch_norm(x, *this, momentum);
  return batch_norm(x, running_mean, running_var, weight, bias, use_batch_stats, momentum,
                    options.eps);
}

void BatchNorm::describe(std::ostream& os) const {
  os << name() << "(" << num_features << ", eps=" << options.eps
     << ", momentum=" << options.momentum << ", affine=" << options.affine
     << ", track_running_stats=" << options.track_running_stats << ")";
}

}  // namespace oar::nn
