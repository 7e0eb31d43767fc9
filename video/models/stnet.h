#pragma once
// StNet (He et al. 2019, "StNet: Local and Global Spatial-Temporal Modeling for Action
// Recognition"; PaddleVideo's stnet_res_model.py):
//  - every segment's seglen consecutive frames stacked into one 3*seglen-channel super-image
//    that a 2D ResNet takes (conv1 has 3*seglen input channels);
//  - a temporal modelling block after layer2 (res3) and after layer3 (res4): over the segments,
//    x + BN(relu(Conv3d_(3,1,1)(x) + b)), channels unchanged (Paddle's temporal_conv_bn);
//  - global average pool per segment, then a temporal Xception block over the segment sequence
//    [N, 2048, seg_num, 1] (Paddle's xception: BN; depthwise (3,1) conv -> 1x1 to 1024 -> BN
//    relu -> depthwise (3,1) -> 1x1, plus a 1x1 shortcut from the BN, summed, BN, relu);
//  - temporal max pool over the segments, fc (1024 -> num_classes).
#include <memory>
#include <string>

#include "video/models/video_resnet.h"

namespace oar::video {

struct StNetOptions {
  VideoResNetOptions backbone;  // 2D; in_channels is set to 3 * seglen
  int64_t seglen = 5;
  int64_t num_classes = 400;
};

// x + BN(relu(conv3d(x))) over [N*seg, C, H, W] viewed as [N, C, seg, H, W].
class TemporalBlock : public nn::Module {
 public:
  TemporalBlock(int64_t channels, Generator* gen);
  // x [N*seg_num, C, H, W]
  Tensor forward_segments(const Tensor& x, int64_t seg_num);
  std::string name() const override { return "TemporalBlock"; }
  std::shared_ptr<nn::Conv3d> conv;
  std::shared_ptr<nn::BatchNorm3d> bn;
};

// Paddle's temporal Xception block, [N, C, seg, 1] -> [N, C_out, seg, 1] (C 2048, C_out 1024 in
// ResNet-50; here C_out = C / 2).
class TemporalXception : public nn::Module {
 public:
  TemporalXception(int64_t in, int64_t out, Generator* gen);
  Tensor forward(const Tensor& x) override;
  std::string name() const override { return "TemporalXception"; }
  std::shared_ptr<nn::BatchNorm2d> bn, bndw, bn2;
  std::shared_ptr<nn::Conv2d> att_conv, att_2, att1, att1_2, dw;
};

class StNet : public VideoResNet {
 public:
  StNet(const StNetOptions& o, Generator* gen);
  // x [N, T, 3, H, W] with T = seg_num * seglen (frames of a segment consecutive) -> logits
  // [N, num_classes]. seg_num = T / seglen may differ between training and testing.
  Tensor forward(const Tensor& x) override;
  std::string name() const override { return "StNet"; }
  // The super-images [N*seg_num, 3*seglen, H, W] of clips x.
  Tensor super_images(const Tensor& x) const;

  StNetOptions options;

 private:
  std::shared_ptr<TemporalBlock> temporal2_, temporal3_;
  std::shared_ptr<TemporalXception> xception_;
  std::shared_ptr<nn::Linear> fc_;
};

}  // namespace oar::video
