#include "vision/models/mobilenet_v2.h"

#include "engine/core/error.h"
#include "engine/ops.h"
#include "vision/models/fused.h"
#include "vision/models/layers.h"

namespace oar::vision {

namespace {

// expand (when expand_ratio > 1) -> depthwise (carries the stride) -> linear projection, as
// children conv.0, conv.1, ... of torchvision's InvertedResidual.
class InvertedResidual : public nn::Module {
 public:
  InvertedResidual(int64_t in, int64_t out, int64_t stride, int64_t expand_ratio, Generator* gen)
      : use_residual_(stride == 1 && in == out) {
    const int64_t hidden = in * expand_ratio;
    conv_ = register_module("conv", std::make_shared<nn::Sequential>());
    ConvNormActOptions expand;
    expand.act = Activation::relu6;
    if (expand_ratio != 1)
      conv_->push_back(std::make_shared<ConvNormActivation>(in, hidden, 1, expand, gen));
    ConvNormActOptions dw = expand;
    dw.stride = stride;
    dw.groups = hidden;
    conv_->push_back(std::make_shared<ConvNormActivation>(hidden, hidden, 3, dw, gen));
    nn::ConvOptions project;
    project.bias = false;
    conv_->push_back(
        std::make_shared<nn::Conv2d>(hidden, out, std::vector<int64_t>{1, 1}, project, gen));
    conv_->push_back(std::make_shared<nn::BatchNorm2d>(out));
  }
  Tensor forward(const Tensor& x) override {
    if (is_training()) fold_.reset();
    // Eval: the projection conv -> BN folds, with the residual as its sum post-op; training: it
    // runs as one conv_bn_train node with the residual added in its BN pass (fused.h).
    return fold_(*conv_, x, use_residual_ ? x : Tensor());
  }
  std::string name() const override { return "InvertedResidual"; }

 private:
  bool use_residual_;
  std::shared_ptr<nn::Sequential> conv_;
  FoldedSequential fold_;
};

}  // namespace

MobileNetV2::MobileNetV2(const MobileNetV2Options& o, Generator* gen) : options(o) {
  OAR_CHECK(o.width_mult > 0, "mobilenet_v2: width_mult must be positive, got ", o.width_mult);
  // Table 2 of the paper: expansion t, output channels c, repeats n, first stride s.
  struct Stage {
    int64_t t, c, n, s;
  };
  const Stage stages[] = {{1, 16, 1, 1}, {6, 24, 2, 2},  {6, 32, 3, 2}, {6, 64, 4, 2},
                          {6, 96, 3, 1}, {6, 160, 3, 2}, {6, 320, 1, 1}};
  features_ = register_module("features", std::make_shared<nn::Sequential>());
  int64_t in = make_divisible(32 * o.width_mult);
  const int64_t last = make_divisible(1280 * std::max(1.0, o.width_mult));
  ConvNormActOptions stem;
  stem.stride = o.small_input ? 1 : 2;
  stem.act = Activation::relu6;
  features_->push_back(std::make_shared<ConvNormActivation>(o.in_channels, in, 3, stem, gen));
  bool first_downsample = true;
  for (const Stage& st : stages) {
    const int64_t out = make_divisible(static_cast<double>(st.c) * o.width_mult);
    for (int64_t i = 0; i < st.n; ++i) {
      int64_t stride = i == 0 ? st.s : 1;
      if (stride == 2 && first_downsample) {
        first_downsample = false;
        if (o.small_input) stride = 1;
      }
      features_->push_back(std::make_shared<InvertedResidual>(in, out, stride, st.t, gen));
      in = out;
    }
  }
  ConvNormActOptions head;
  head.act = Activation::relu6;
  features_->push_back(std::make_shared<ConvNormActivation>(in, last, 1, head, gen));
  classifier_ = register_module("classifier",
                                std::make_shared<nn::Sequential>(
                                    std::make_shared<nn::Dropout>(o.dropout),
                                    std::make_shared<nn::Linear>(last, o.num_classes, true, gen)));
  init_like_torchvision(*this, gen ? *gen : default_generator(), /*linear_std=*/0.01);
}

Tensor MobileNetV2::forward(const Tensor& x) {
  OAR_CHECK(x.dim() == 4 && x.size(1) == options.in_channels, name(), ": input must be [N, ",
            options.in_channels, ", H, W], got ", shape_str(x.shape()));
  Tensor h = (*features_)(x);
  return (*classifier_)(global_avg_pool(h).flatten(1));
}

}  // namespace oar::vision
