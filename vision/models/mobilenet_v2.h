#pragma once
// MobileNetV2 (Sandler et al. 2018, "Inverted Residuals and Linear Bottlenecks", table 2) as
// torchvision builds it: a 3x3 stride-2 conv, 17 inverted residual blocks (1x1 expand-BN-ReLU6,
// 3x3 depthwise-BN-ReLU6, 1x1 linear projection-BN; a residual connection where the shape
// allows), a 1x1 conv to 1280 channels, global average pooling, dropout and a linear classifier.
// Channels are width_mult times the paper's, rounded to multiples of 8.
//
// State names are torchvision's (`features.0.0`, `features.2.conv.1.0`, `features.18.1`,
// `classifier.1`), so a torchvision state_dict loads by name.
#include <memory>

#include "engine/nn.h"

namespace oar::vision {

struct MobileNetV2Options {
  double width_mult = 1.0;
  // For 28x28/32x32 images: the stem conv and the first stride-2 block use stride 1.
  bool small_input = false;
  int64_t in_channels = 3;
  int64_t num_classes = 1000;
  double dropout = 0.2;
};

class MobileNetV2 : public nn::Module {
 public:
  MobileNetV2(const MobileNetV2Options& o, Generator* gen);
  Tensor forward(const Tensor& x) override;  // [N, C, H, W] -> logits [N, num_classes]
  std::string name() const override { return "MobileNetV2"; }

  MobileNetV2Options options;

 private:
  std::shared_ptr<nn::Sequential> features_, classifier_;
};

}  // namespace oar::vision
