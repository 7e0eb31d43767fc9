#pragma once
// MobileNetV3 (Howard et al. 2019, "Searching for MobileNetV3", tables 1 and 2) as torchvision
// builds it: a 3x3 stride-2 conv with hardswish, inverted residual blocks (expand, depthwise
// 3x3/5x5, optional squeeze-and-excitation with ReLU/hardsigmoid, linear projection; ReLU or
// hardswish), a 1x1 conv to 6x the last block's channels, global average pooling, then
// Linear-hardswish-dropout-Linear. BN has eps 0.001 and momentum 0.01 as in the paper's code.
//
// State names are torchvision's (`features.1.block.1.fc1`, `features.12.0`, `classifier.0`,
// `classifier.3`), so a torchvision state_dict loads by name.
#include <memory>

#include "engine/nn.h"

namespace oar::vision {

struct MobileNetV3Options {
  bool large = true;  // false: MobileNetV3-Small
  double width_mult = 1.0;
  // For 28x28/32x32 images: the stem conv and the first stride-2 block use stride 1.
  bool small_input = false;
  int64_t in_channels = 3;
  int64_t num_classes = 1000;
  double dropout = 0.2;
};

class MobileNetV3 : public nn::Module {
 public:
  MobileNetV3(const MobileNetV3Options& o, Generator* gen);
  Tensor forward(const Tensor& x) override;  // [N, C, H, W] -> logits [N, num_classes]
  std::string name() const override { return "MobileNetV3"; }

  MobileNetV3Options options;

 private:
  std::shared_ptr<nn::Sequential> features_, classifier_;
};

}  // namespace oar::vision
