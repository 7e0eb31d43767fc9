#include "vision/models/mobilenet_v1.h"

#include "engine/core/error.h"
#include "engine/ops.h"
#include "vision/models/layers.h"

namespace oar::vision {

MobileNetV1::MobileNetV1(const MobileNetV1Options& o, Generator* gen) : options(o) {
  OAR_CHECK(o.width_mult > 0, "mobilenet_v1: width_mult must be positive, got ", o.width_mult);
  auto width = [&](int64_t c) {
    return std::max<int64_t>(1, static_cast<int64_t>(static_cast<double>(c) * o.width_mult));
  };
  // Table 1 of the paper: (output channels, stride) of each depthwise-separable block.
  struct Block {
    int64_t channels, stride;
  };
  const Block blocks[] = {{64, 1},  {128, 2}, {128, 1}, {256, 2}, {256, 1},  {512, 2}, {512, 1},
                          {512, 1}, {512, 1}, {512, 1}, {512, 1}, {1024, 2}, {1024, 1}};
  features_ = register_module("features", std::make_shared<nn::Sequential>());
  ConvNormActOptions stem;
  stem.stride = o.small_input ? 1 : 2;
  int64_t in = width(32);
  features_->push_back(std::make_shared<ConvNormActivation>(o.in_channels, in, 3, stem, gen));
  bool first_downsample = true;
  for (const Block& b : blocks) {
    ConvNormActOptions dw, pw;
    dw.stride = b.stride;
    if (b.stride == 2 && first_downsample) {
      first_downsample = false;
      if (o.small_input) dw.stride = 1;
    }
    dw.groups = in;
    const int64_t out = width(b.channels);
    features_->push_back(std::make_shared<nn::Sequential>(
        std::make_shared<ConvNormActivation>(in, in, 3, dw, gen),
        std::make_shared<ConvNormActivation>(in, out, 1, pw, gen)));
    in = out;
  }
  classifier_ = register_module(
      "classifier",
      std::make_shared<nn::Sequential>(std::make_shared<nn::Dropout>(o.dropout),
                                       std::make_shared<nn::Linear>(in, o.num_classes, true, gen)));
  init_like_torchvision(*this, gen ? *gen : default_generator(), /*linear_std=*/0.01);
}

Tensor MobileNetV1::forward(const Tensor& x) {
  OAR_CHECK(x.dim() == 4 && x.size(1) == options.in_channels, name(), ": input must be [N, ",
            options.in_channels, ", H, W], got ", shape_str(x.shape()));
  Tensor h = (*features_)(x);
  return (*classifier_)(global_avg_pool(h).flatten(1));
}

}  // namespace oar::vision
