#include "vision/models/mobilenet_v3.h"

#include <vector>

#include "engine/core/error.h"
#include "engine/ops.h"
#include "vision/models/layers.h"

namespace oar::vision {

namespace {

nn::BatchNormOptions v3_norm() {
  nn::BatchNormOptions n;
  n.eps = 0.001;
  n.momentum = 0.01;
  return n;
}

// One row of the paper's tables: input, kernel, expanded and output channels, SE, activation,
// stride.
struct Bneck {
  int64_t in, kernel, expanded, out;
  bool se;
  bool hardswish;
  int64_t stride;
};

// [expand] -> depthwise (carries the stride) -> [SE] -> linear projection, as children block.0,
// block.1, ... of torchvision's InvertedResidual.
class InvertedResidual : public nn::Module {
 public:
  InvertedResidual(const Bneck& b, Generator* gen) : use_residual_(b.stride == 1 && b.in == b.out) {
    block_ = register_module("block", std::make_shared<nn::Sequential>());
    ConvNormActOptions a;
    a.act = b.hardswish ? Activation::hardswish : Activation::relu;
    a.norm = v3_norm();
    if (b.expanded != b.in)
      block_->push_back(std::make_shared<ConvNormActivation>(b.in, b.expanded, 1, a, gen));
    ConvNormActOptions dw = a;
    dw.stride = b.stride;
    dw.groups = b.expanded;
    block_->push_back(
        std::make_shared<ConvNormActivation>(b.expanded, b.expanded, b.kernel, dw, gen));
    if (b.se)
      block_->push_back(
          std::make_shared<SqueezeExcitation>(b.expanded, make_divisible(b.expanded / 4), gen));
    ConvNormActOptions project = a;
    project.act = Activation::none;
    block_->push_back(std::make_shared<ConvNormActivation>(b.expanded, b.out, 1, project, gen));
  }
  Tensor forward(const Tensor& x) override {
    Tensor h = (*block_)(x);
    return use_residual_ ? x + h : h;
  }
  std::string name() const override { return "InvertedResidual"; }

 private:
  bool use_residual_;
  std::shared_ptr<nn::Sequential> block_;
};

// Tables 1 (large) and 2 (small) of the paper, at width 1.
const std::vector<Bneck>& table(bool large) {
  static const std::vector<Bneck> l = {
      {16, 3, 16, 16, false, false, 1},  {16, 3, 64, 24, false, false, 2},
      {24, 3, 72, 24, false, false, 1},  {24, 5, 72, 40, true, false, 2},
      {40, 5, 120, 40, true, false, 1},  {40, 5, 120, 40, true, false, 1},
      {40, 3, 240, 80, false, true, 2},  {80, 3, 200, 80, false, true, 1},
      {80, 3, 184, 80, false, true, 1},  {80, 3, 184, 80, false, true, 1},
      {80, 3, 480, 112, true, true, 1},  {112, 3, 672, 112, true, true, 1},
      {112, 5, 672, 160, true, true, 2}, {160, 5, 960, 160, true, true, 1},
      {160, 5, 960, 160, true, true, 1}};
  static const std::vector<Bneck> s = {
      {16, 3, 16, 16, true, false, 2},  {16, 3, 72, 24, false, false, 2},
      {24, 3, 88, 24, false, false, 1}, {24, 5, 96, 40, true, true, 2},
      {40, 5, 240, 40, true, true, 1},  {40, 5, 240, 40, true, true, 1},
      {40, 5, 120, 48, true, true, 1},  {48, 5, 144, 48, true, true, 1},
      {48, 5, 288, 96, true, true, 2},  {96, 5, 576, 96, true, true, 1},
      {96, 5, 576, 96, true, true, 1}};
  return large ? l : s;
}

}  // namespace

MobileNetV3::MobileNetV3(const MobileNetV3Options& o, Generator* gen) : options(o) {
  OAR_CHECK(o.width_mult > 0, "mobilenet_v3: width_mult must be positive, got ", o.width_mult);
  auto width = [&](int64_t c) { return make_divisible(static_cast<double>(c) * o.width_mult); };
  features_ = register_module("features", std::make_shared<nn::Sequential>());
  ConvNormActOptions stem;
  stem.stride = o.small_input ? 1 : 2;
  stem.act = Activation::hardswish;
  stem.norm = v3_norm();
  features_->push_back(
      std::make_shared<ConvNormActivation>(o.in_channels, width(16), 3, stem, gen));
  bool first_downsample = true;
  int64_t last_out = 0;
  for (Bneck b : table(o.large)) {
    b.in = width(b.in);
    b.expanded = width(b.expanded);
    b.out = width(b.out);
    if (b.stride == 2 && first_downsample) {
      first_downsample = false;
      if (o.small_input) b.stride = 1;
    }
    features_->push_back(std::make_shared<InvertedResidual>(b, gen));
    last_out = b.out;
  }
  ConvNormActOptions head = stem;
  head.stride = 1;
  const int64_t head_channels = 6 * last_out;
  features_->push_back(std::make_shared<ConvNormActivation>(last_out, head_channels, 1, head, gen));
  const int64_t hidden = width(o.large ? 1280 : 1024);
  classifier_ = register_module(
      "classifier", std::make_shared<nn::Sequential>(
                        std::make_shared<nn::Linear>(head_channels, hidden, true, gen),
                        std::make_shared<Hardswish>(), std::make_shared<nn::Dropout>(o.dropout),
                        std::make_shared<nn::Linear>(hidden, o.num_classes, true, gen)));
  init_like_torchvision(*this, gen ? *gen : default_generator(), /*linear_std=*/0.01);
}

Tensor MobileNetV3::forward(const Tensor& x) {
  OAR_CHECK(x.dim() == 4 && x.size(1) == options.in_channels, name(), ": input must be [N, ",
            options.in_channels, ", H, W], got ", shape_str(x.shape()));
  Tensor h = (*features_)(x);
  return (*classifier_)(global_avg_pool(h).flatten(1));
}

}  // namespace oar::vision
