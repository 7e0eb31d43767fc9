#pragma once
// ResNet (He et al. 2015, "Deep Residual Learning for Image Recognition") in torchvision's v1.5
// layout (the stride of a bottleneck sits on its 3x3 conv), plus
//  - "vd" (He et al. 2018, "Bag of Tricks", as PaddleClas's ResNet*_vd): a deep stem of three
//    3x3 convs and shortcuts that downsample by 2x2 average pooling before their 1x1 conv;
//  - the CIFAR ResNets of the paper's section 4.2 (depth 6n+2, 16/32/64 channels, parameter-free
//    shortcuts: subsampling plus zero channels, "option A").
//
// State names are torchvision's (`conv1`, `bn1`, `layer1.0.conv1`, `layer1.0.downsample.0`,
// `fc`), so a torchvision state_dict loads by name. vd models use timm's names for what
// torchvision lacks: the stem is `conv1.{0,1,3,4,6}` + `bn1`, a shortcut `downsample.{1,2}`
// behind its pool (timm's resnet*d checkpoints load by name).
#include <memory>
#include <string>

#include "engine/nn.h"

namespace oar::vision {

struct ResNetOptions {
  int64_t depth = 50;  // 18 34 50 101 152; cifar: 6n+2 (20 32 44 56 110)
  bool vd = false;
  bool cifar = false;
  // For 28x28/32x32 images: a 3x3 stride-1 first conv and no max pool.
  bool small_input = false;
  // Zero gamma in the last BN of every residual branch, so each block starts as identity.
  bool zero_init_residual = false;
  int64_t in_channels = 3;
  int64_t num_classes = 1000;
  double dropout = 0.0;  // before fc
};

// Parses "resnet50", "resnet50_vd", "resnet20_cifar" into depth/vd/cifar; throws otherwise.
ResNetOptions resnet_variant(const std::string& name);

class ConvBnFold;  // vision/models/fused.h

class ResNet : public nn::Module {
 public:
  ResNet(const ResNetOptions& o, Generator* gen);
  Tensor forward(const Tensor& x) override;  // [N, C, H, W] -> logits [N, num_classes]
  // The global-average pooled features before dropout and fc: [N, C, H, W] -> [N, F].
  Tensor pooled_features(const Tensor& x);
  int64_t feature_channels() const { return fc_->in_features; }
  std::string name() const override { return "ResNet"; }

  ResNetOptions options;

 private:
  std::shared_ptr<nn::Module> conv1_;
  std::shared_ptr<nn::BatchNorm2d> bn1_;
  std::shared_ptr<nn::Module> maxpool_;  // null with small_input and cifar
  std::vector<std::shared_ptr<nn::Sequential>> layers_;
  std::shared_ptr<nn::Dropout> dropout_;
  std::shared_ptr<nn::Linear> fc_;
  std::shared_ptr<ConvBnFold> stem_fold_;  // conv1 -> bn1 -> ReLU folded in eval mode
  // vd's deep stem in eval mode: conv1.0 -> conv1.1 -> ReLU and conv1.3 -> conv1.4 -> ReLU folded
  // (conv1.6 -> bn1 -> ReLU is stem_fold_).
  std::shared_ptr<ConvBnFold> deep_fold0_, deep_fold1_;
  // The stem, folded where can_fold allows (eval), with `x` channels-last on the CPU; an
  // undefined tensor when it cannot be folded.
  Tensor folded_stem(const Tensor& x);
};

}  // namespace oar::vision
