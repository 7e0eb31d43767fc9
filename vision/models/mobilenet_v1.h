#pragma once
// MobileNetV1 (Howard et al. 2017, "MobileNets", table 1): a 3x3 stride-2 conv, then 13
// depthwise-separable blocks (3x3 depthwise conv-BN-ReLU, 1x1 pointwise conv-BN-ReLU), global
// average pooling and a linear classifier. Widths scale by the width multiplier alpha
// (int(c * alpha), as the reference Keras implementation).
//
// torchvision has no MobileNetV1; names follow its MobileNetV2: `features.0.{0,1}` is the stem
// conv and BN, `features.i.{0,1}.{0,1}` block i's depthwise and pointwise conv and BN,
// `classifier.1` the linear layer.
#include <memory>

#include "engine/nn.h"

namespace oar::vision {

struct MobileNetV1Options {
  double width_mult = 1.0;
  // For 28x28/32x32 images: the stem conv and the first stride-2 block use stride 1.
  bool small_input = false;
  int64_t in_channels = 3;
  int64_t num_classes = 1000;
  double dropout = 0.0;
};

class MobileNetV1 : public nn::Module {
 public:
  MobileNetV1(const MobileNetV1Options& o, Generator* gen);
  Tensor forward(const Tensor& x) override;  // [N, C, H, W] -> logits [N, num_classes]
  std::string name() const override { return "MobileNetV1"; }

  MobileNetV1Options options;

 private:
  std::shared_ptr<nn::Sequential> features_, classifier_;
};

}  // namespace oar::vision
