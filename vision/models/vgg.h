#pragma once
// VGG (Simonyan & Zisserman 2014, "Very Deep Convolutional Networks", table 1, configurations
// A/B/D/E = VGG-11/13/16/19), optionally with BN after every conv (torchvision's vgg*_bn):
// 3x3 convs with bias and ReLU, 2x2 max pools, adaptive average pooling to 7x7, then
// Linear(25088, 4096)-ReLU-dropout-Linear(4096, 4096)-ReLU-dropout-Linear(4096, classes).
//
// State names are torchvision's (`features.N`, `classifier.{0,3,6}`), so a torchvision
// state_dict loads by name.
#include <memory>

#include "engine/nn.h"

namespace oar::vision {

struct VggOptions {
  int64_t depth = 16;  // 11 13 16 19
  bool batch_norm = false;
  int64_t in_channels = 3;
  int64_t num_classes = 1000;
  double dropout = 0.5;
};

class Vgg : public nn::Module {
 public:
  Vgg(const VggOptions& o, Generator* gen);
  // [N, C, H, W] (H, W >= 32) -> logits [N, num_classes]
  Tensor forward(const Tensor& x) override;
  std::string name() const override { return "VGG"; }

  VggOptions options;

 private:
  std::shared_ptr<nn::Sequential> features_, classifier_;
  std::shared_ptr<nn::Module> avgpool_;
};

}  // namespace oar::vision
