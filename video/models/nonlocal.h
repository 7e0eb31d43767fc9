#pragma once
// Non-local neural networks (Wang et al. 2018) on PaddleVideo's 3D ResNet-50 (resnet_video.py,
// nonlocal_helper.py): C2D (every kernel temporal size 1) or I3D (stem 5x7x7, 3x1x1 first convs
// in the blocks i3d_temporal_kernels lists), a temporal max pool (2,1,1) after layer1 (res2),
// and an embedded-Gaussian non-local block after every other block of layer2 (res3) and layer3
// (res4) (`layer_mod: 2`: blocks 1, 3, 5, ...). Head: global average pool, dropout, fc.
#include <memory>
#include <string>

#include "video/models/video_resnet.h"

namespace oar::video {

// y = x + BN(W_out * (softmax(theta(x)^T phi(p(x)) / sqrt(d)) applied to g(p(x)))), with
// theta/phi/g 1x1x1 convs to d = C/2 channels (with bias), p a (1,2,2) max pool (skipped when
// H or W < 2), and the BN gamma initialised to zero so the block starts as the identity.
class NonLocalBlock : public nn::Module {
 public:
  NonLocalBlock(int64_t channels, int64_t inner, Generator* gen, double conv_init_std = 0.01);
  Tensor forward(const Tensor& x) override;  // [N, C, T, H, W] -> same
  std::string name() const override { return "NonLocalBlock"; }
  std::shared_ptr<nn::Conv3d> theta, phi, g, out;
  std::shared_ptr<nn::BatchNorm3d> bn;
  int64_t inner;
};

struct NonLocalOptions {
  bool i3d = false;             // false: C2D
  VideoResNetOptions backbone;  // conv3d, kernels and pool are set from i3d
  int64_t num_classes = 400;
  double dropout = 0.5;
  int64_t layer_mod = 2;  // a non-local block after block b of res3/res4 when b % mod == mod-1
  bool res3_nonlocal = true, res4_nonlocal = true;
};

class NonLocalNet : public VideoResNet {
 public:
  NonLocalNet(const NonLocalOptions& o, Generator* gen);
  // x [N, T, 3, H, W] -> logits [N, num_classes]
  Tensor forward(const Tensor& x) override;
  std::string name() const override { return "NonLocalNet"; }
  // The trunk's input layout: [N, T, C, H, W] -> [N, C, T, H, W].
  static Tensor to_channels_first(const Tensor& x);

  NonLocalOptions options;

 private:
  std::shared_ptr<nn::Dropout> dropout_;
  std::shared_ptr<nn::Linear> fc_;
};

// The backbone options of C2D or I3D with the given blocks (empty: from depth).
VideoResNetOptions nonlocal_backbone(bool i3d, VideoResNetOptions base);

}  // namespace oar::video
