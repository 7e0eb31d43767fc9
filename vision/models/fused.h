#pragma once
// Inference-time fusion for the CNNs of vision/models. In eval mode a BatchNorm that normalises
// with its running statistics is a per-channel affine map, so conv -> BN folds into one conv with
//   weight w * s and bias beta + (b - mean) * s,   s = gamma / sqrt(running_var + eps),
// and the residual add and ReLU/ReLU6 that follow run as that conv's post-ops (conv_fused): one
// pass over the output instead of four. Exact up to rounding. The folded weight and bias are kept
// and recomputed only when a parameter or buffer they come from changes (storage or version) or
// the block ran in training mode since. With gradients wanted the fold is recomputed each call
// with differentiable ops, so gamma, beta and the conv's weight still get their gradients.
#include <memory>
#include <mutex>
#include <utility>
#include <vector>

#include "engine/nn.h"
#include "engine/ops/conv_fused.h"

namespace oar::vision {

// Whether conv -> bn may run folded now: bn in eval mode with running statistics and matching
// channels, no forward hook watching module calls (`oar model summary`), fusion not switched off.
bool can_fold(const nn::Conv& conv, const nn::BatchNorm& bn);

// Whether conv -> bn may run as one training node now (conv_bn_train in conv_fused.h): bn in
// training mode with batch statistics from this rank only, conv without bias, no forward hook,
// fusion not switched off.
bool can_fuse_train(const nn::Conv& conv, const nn::BatchNorm& bn);
// act(bn(conv(x)) + residual) in training mode as one node, with bn's bookkeeping
// (num_batches_tracked, momentum) done as nn::BatchNorm::forward does; only when can_fuse_train.
Tensor conv_bn_train(const nn::Conv& conv, nn::BatchNorm& bn, const Tensor& x,
                     const Tensor& residual, ConvActivation act);

// Switches the fusion (inference folding and the fused training nodes) off on this thread while
// alive (tests compare against the unfused modules; anyone may want the modules run one by one).
class NoInferenceFusionGuard {
 public:
  NoInferenceFusionGuard();
  ~NoInferenceFusionGuard();
  NoInferenceFusionGuard(const NoInferenceFusionGuard&) = delete;
  NoInferenceFusionGuard& operator=(const NoInferenceFusionGuard&) = delete;

 private:
  bool prev_;
};

// One conv -> BN pair's folded weight and bias.
class ConvBnFold {
 public:
  // act(bn(conv(x)) + residual) (residual optional) as one convolution; only when can_fold.
  Tensor operator()(const nn::Conv& conv, const nn::BatchNorm& bn, const Tensor& x,
                    const Tensor& residual, ConvActivation act);
  void reset();

 private:
  std::mutex mu_;
  std::vector<std::pair<const void*, uint64_t>> stamp_;
  Tensor w_, b_;
  Tensor lowered_w_;  // w_ in the autocast dtype, made once per fold (w_ is not a parameter, so
                      // autocast's per-parameter cache would cast it again on every call)
};

// A Sequential run with every Conv -> BatchNorm [-> ReLU | ReLU6] as one fused conv (where
// can_fold) or one conv_bn_train node (where can_fuse_train; other items run as they are). residual
// (optional) is added to the output: inside the last conv when the sequence ends with Conv ->
// BatchNorm, else after it.
class FoldedSequential {
 public:
  Tensor operator()(const nn::Sequential& s, const Tensor& x, const Tensor& residual = Tensor());
  void reset();

 private:
  std::mutex mu_;
  std::vector<std::shared_ptr<ConvBnFold>> folds_;  // by item index
};

}  // namespace oar::vision
