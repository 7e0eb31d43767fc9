#include "vision/models/fused.h"

#include "engine/autograd/autocast.h"
#include "engine/autograd/grad_mode.h"
#include "engine/core/error.h"
#include "engine/nn/forward_hook.h"
#include "engine/ops.h"
#include "vision/models/layers.h"

namespace oar::vision {

namespace {
thread_local bool g_fusion_off = false;

std::pair<const void*, uint64_t> stamp_of(const Tensor& t) {
  if (!t.defined()) return {nullptr, 0};
  const auto& s = t.impl()->storage;
  return {s.get(), s->version};
}
}  // namespace

bool can_fold(const nn::Conv& conv, const nn::BatchNorm& bn) {
  return !g_fusion_off && !bn.is_training() && bn.options.track_running_stats &&
         bn.running_mean.defined() && bn.running_var.defined() &&
         bn.num_features == conv.out_channels && !nn::forward_hook_active();
}

bool can_fuse_train(const nn::Conv& conv, const nn::BatchNorm& bn) {
  return !g_fusion_off && bn.is_training() && !conv.bias.defined() &&
         bn.num_features == conv.out_channels && !nn::forward_hook_active() &&
         !nn::batch_norm_cross_rank_sum_active() &&
         (!bn.options.track_running_stats || bn.num_batches_tracked.defined());
}

Tensor conv_bn_train(const nn::Conv& conv, nn::BatchNorm& bn, const Tensor& x,
                     const Tensor& residual, ConvActivation act) {
  OAR_CHECK(x.dim() == conv.spatial_dims + 2 && x.size(1) == conv.in_channels, conv.name(),
            ": input must be [N, ", conv.in_channels, ", ", conv.spatial_dims,
            " spatial dims], got ", shape_str(x.shape()));
  BatchNormArgs a{bn.weight, bn.bias, Tensor(), Tensor(), bn.options.momentum, bn.options.eps};
  if (bn.options.track_running_stats) {  // as nn::BatchNorm::forward in training
    NoGradGuard no_grad;
    const double n = bn.num_batches_tracked.item_double() + 1;
    bn.num_batches_tracked.fill_(n);
    if (a.momentum < 0) a.momentum = 1.0 / n;
    a.running_mean = bn.running_mean;
    a.running_var = bn.running_var;
  }
  return oar::conv_bn_train(x, conv.weight,
                            ConvParams{conv.stride, conv.padding, conv.dilation, conv.groups}, a,
                            residual, act);
}

NoInferenceFusionGuard::NoInferenceFusionGuard() : prev_(g_fusion_off) {
  g_fusion_off = true;
}
NoInferenceFusionGuard::~NoInferenceFusionGuard() {
  g_fusion_off = prev_;
}

Tensor ConvBnFold::operator()(const nn::Conv& conv, const nn::BatchNorm& bn, const Tensor& x,
                              const Tensor& residual, ConvActivation act) {
  const ConvParams p{conv.stride, conv.padding, conv.dilation, conv.groups};
  const DType wt = conv.weight.dtype();
  // The fold in f32 whatever the parameters' dtype, cast back to it.
  auto fold = [&](Tensor& w, Tensor& b) {
    Shape per_out(conv.weight.dim(), 1);
    per_out[0] = conv.out_channels;
    Tensor s = rsqrt(bn.running_var.to(DType::f32) + bn.options.eps);
    if (bn.weight.defined()) s = s * bn.weight.to(DType::f32);
    Tensor shift = neg(bn.running_mean.to(DType::f32));
    if (conv.bias.defined()) shift = shift + conv.bias.to(DType::f32);
    b = shift * s;
    if (bn.bias.defined()) b = b + bn.bias.to(DType::f32);
    w = (conv.weight.to(DType::f32) * s.view(per_out)).to(wt).contiguous();
    b = b.to(conv.bias.defined() ? conv.bias.dtype() : wt);
  };
  const bool grad = grad_enabled() && (conv.weight.requires_grad() ||
                                       (conv.bias.defined() && conv.bias.requires_grad()) ||
                                       (bn.weight.defined() && bn.weight.requires_grad()) ||
                                       (bn.bias.defined() && bn.bias.requires_grad()));
  if (grad) {
    Tensor w, b;
    fold(w, b);
    return conv_fused(x, w, b, p, residual, act);
  }
  Tensor w, b;
  {
    std::lock_guard<std::mutex> lock(mu_);
    const std::vector<std::pair<const void*, uint64_t>> now{
        stamp_of(conv.weight), stamp_of(conv.bias),       stamp_of(bn.weight),
        stamp_of(bn.bias),     stamp_of(bn.running_mean), stamp_of(bn.running_var)};
    if (!w_.defined() || now != stamp_ || w_.device() != conv.weight.device()) {
      NoGradGuard ng;
      fold(w_, b_);
      stamp_ = now;
      lowered_w_ = Tensor();
    }
    w = w_;
    b = b_;
    if (autocast_enabled() && w_.dtype() == DType::f32 &&
        autocast_policy("conv") == AutocastPolicy::lower) {
      if (!lowered_w_.defined() || lowered_w_.dtype() != autocast_dtype()) {
        NoGradGuard ng;
        lowered_w_ = w_.to(autocast_dtype());
      }
      w = lowered_w_;
    }
  }
  return conv_fused(x, w, b, p, residual, act);
}

void ConvBnFold::reset() {
  std::lock_guard<std::mutex> lock(mu_);
  stamp_.clear();
  w_ = Tensor();
  b_ = Tensor();
  lowered_w_ = Tensor();
}

Tensor FoldedSequential::operator()(const nn::Sequential& s, const Tensor& x,
                                    const Tensor& residual) {
  Tensor h = x;
  bool residual_done = !residual.defined();
  for (size_t i = 0; i < s.size(); ++i) {
    auto* conv = dynamic_cast<nn::Conv*>(s[i].get());
    auto* bn = i + 1 < s.size() ? dynamic_cast<nn::BatchNorm*>(s[i + 1].get()) : nullptr;
    const bool fold = conv && bn && can_fold(*conv, *bn);
    if (!fold && !(conv && bn && can_fuse_train(*conv, *bn))) {
      h = (*s[i])(h);
      continue;
    }
    ConvActivation act = ConvActivation::none;
    size_t last = i + 1;
    if (i + 2 < s.size() && dynamic_cast<ReLU*>(s[i + 2].get())) act = ConvActivation::relu;
    if (i + 2 < s.size() && dynamic_cast<ReLU6*>(s[i + 2].get())) act = ConvActivation::relu6;
    if (act != ConvActivation::none) last = i + 2;
    // The residual goes in when this pair ends the sequence and no activation follows it.
    const bool add_here = !residual_done && last + 1 == s.size() && act == ConvActivation::none;
    if (fold) {
      std::shared_ptr<ConvBnFold> f;
      {
        std::lock_guard<std::mutex> lock(mu_);
        if (folds_.size() < s.size()) folds_.resize(s.size());
        if (!folds_[i]) folds_[i] = std::make_shared<ConvBnFold>();
        f = folds_[i];
      }
      h = (*f)(*conv, *bn, h, add_here ? residual : Tensor(), act);
    } else {
      h = conv_bn_train(*conv, *bn, h, add_here ? residual : Tensor(), act);
    }
    residual_done |= add_here;
    i = last;
  }
  return residual_done ? h : h + residual;
}

void FoldedSequential::reset() {
  std::lock_guard<std::mutex> lock(mu_);
  for (auto& f : folds_)
    if (f) f->reset();
}

}  // namespace oar::vision
