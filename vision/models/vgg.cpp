#include "vision/models/vgg.h"

#include <vector>

#include "engine/core/error.h"
#include "engine/ops.h"
#include "vision/models/layers.h"

namespace oar::vision {

namespace {
constexpr int64_t M = 0;  // a 2x2 max pool in the configurations below

// Table 1 of the paper: conv widths, M for max pool.
const std::vector<int64_t>& configuration(int64_t depth) {
  static const std::vector<int64_t> a = {64, M, 128, M, 256, 256, M, 512, 512, M, 512, 512, M};
  static const std::vector<int64_t> b = {64, 64,  M,   128, 128, M,   256, 256,
                                         M,  512, 512, M,   512, 512, M};
  static const std::vector<int64_t> d = {64, 64,  M,   128, 128, M,   256, 256, 256,
                                         M,  512, 512, 512, M,   512, 512, 512, M};
  static const std::vector<int64_t> e = {64,  64,  M,   128, 128, M,   256, 256, 256, 256, M,
                                         512, 512, 512, 512, M,   512, 512, 512, 512, M};
  switch (depth) {
    case 11:
      return a;
    case 13:
      return b;
    case 16:
      return d;
    case 19:
      return e;
    default:
      OAR_CHECK(false, "vgg: depth must be 11, 13, 16 or 19, got ", depth);
  }
  return a;
}
}  // namespace

Vgg::Vgg(const VggOptions& o, Generator* gen) : options(o) {
  features_ = register_module("features", std::make_shared<nn::Sequential>());
  int64_t in = o.in_channels;
  for (int64_t v : configuration(o.depth)) {
    if (v == M) {
      features_->push_back(std::make_shared<MaxPool2d>(2, 2));
      continue;
    }
    nn::ConvOptions co;
    co.padding = {1};
    features_->push_back(std::make_shared<nn::Conv2d>(in, v, std::vector<int64_t>{3, 3}, co, gen));
    if (o.batch_norm) features_->push_back(std::make_shared<nn::BatchNorm2d>(v));
    features_->push_back(std::make_shared<ReLU>());
    in = v;
  }
  avgpool_ = register_module("avgpool", std::make_shared<AdaptiveAvgPool2d>(7, 7));
  classifier_ = register_module(
      "classifier", std::make_shared<nn::Sequential>(
                        std::make_shared<nn::Linear>(in * 7 * 7, 4096, true, gen),
                        std::make_shared<ReLU>(), std::make_shared<nn::Dropout>(o.dropout),
                        std::make_shared<nn::Linear>(4096, 4096, true, gen),
                        std::make_shared<ReLU>(), std::make_shared<nn::Dropout>(o.dropout),
                        std::make_shared<nn::Linear>(4096, o.num_classes, true, gen)));
  init_like_torchvision(*this, gen ? *gen : default_generator(), /*linear_std=*/0.01);
}

Tensor Vgg::forward(const Tensor& x) {
  OAR_CHECK(x.dim() == 4 && x.size(1) == options.in_channels && x.size(2) >= 32 && x.size(3) >= 32,
            name(), ": input must be [N, ", options.in_channels, ", H >= 32, W >= 32], got ",
            shape_str(x.shape()));
  Tensor h = (*avgpool_)((*features_)(x));
  return (*classifier_)(h.flatten(1));
}

}  // namespace oar::vision
