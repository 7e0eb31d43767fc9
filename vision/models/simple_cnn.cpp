#include "vision/models/simple_cnn.h"

#include "engine/core/error.h"
#include "engine/ops.h"
#include "vision/models/fused.h"

namespace oar::vision {

namespace {
// conv3x3 (no bias: BN follows) -> BN -> ReLU
class ConvBnRelu : public nn::Module {
 public:
  ConvBnRelu(int64_t in, int64_t out, Generator* gen) {
    nn::ConvOptions co;
    co.padding = {1, 1};
    co.bias = false;
    conv = register_module(
        "conv", std::make_shared<nn::Conv2d>(in, out, std::vector<int64_t>{3, 3}, co, gen));
    bn = register_module("bn", std::make_shared<nn::BatchNorm2d>(out));
  }
  // Eval: one folded conv with the ReLU as its post-op; training: one conv_bn_train node
  // (vision/models/fused.h); otherwise (hooks, autocast, fusion off) module by module.
  Tensor forward(const Tensor& x) override {
    if (can_fold(*conv, *bn)) return fold(*conv, *bn, x, Tensor(), ConvActivation::relu);
    if (is_training()) fold.reset();  // stale after a training step; free it
    if (can_fuse_train(*conv, *bn))
      return conv_bn_train(*conv, *bn, x, Tensor(), ConvActivation::relu);
    return relu((*bn)((*conv)(x)));
  }
  std::string name() const override { return "ConvBnRelu"; }
  std::shared_ptr<nn::Conv2d> conv;
  std::shared_ptr<nn::BatchNorm2d> bn;
  ConvBnFold fold;
};

class MaxPool2x2 : public nn::Module {
 public:
  Tensor forward(const Tensor& x) override {
    PoolParams p;
    p.kernel = {2, 2};
    return max_pool(x, p);
  }
  std::string name() const override { return "MaxPool2x2"; }
};
}  // namespace

SimpleCnn::SimpleCnn(const SimpleCnnOptions& o, Generator* gen) {
  OAR_CHECK(o.stages >= 1 && o.width >= 1, "simple_cnn: stages and width must be positive");
  features_ = register_module("features", std::make_shared<nn::Sequential>());
  int64_t in = o.in_channels, w = o.width;
  for (int64_t s = 0; s < o.stages; ++s) {
    features_->push_back(std::make_shared<ConvBnRelu>(in, w, gen));
    features_->push_back(std::make_shared<ConvBnRelu>(w, w, gen));
    features_->push_back(std::make_shared<MaxPool2x2>());
    in = w;
    w *= 2;
  }
  dropout_ = register_module("dropout", std::make_shared<nn::Dropout>(o.dropout));
  fc_ = register_module("fc", std::make_shared<nn::Linear>(in, o.num_classes, true, gen));
}

Tensor SimpleCnn::forward(const Tensor& x) {
  OAR_CHECK(x.dim() == 4, "simple_cnn: input must be [N, C, H, W], got ", shape_str(x.shape()));
  Tensor h = (*features_)(x);
  h = global_avg_pool(h).flatten(1);
  return (*fc_)((*dropout_)(h));
}

}  // namespace oar::vision
