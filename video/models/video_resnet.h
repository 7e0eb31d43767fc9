#pragma once
// The ResNet trunk the frame-based video classifiers share (torchvision's v1.5 bottleneck
// layout and state names: `conv1`, `bn1`, `layer1.0.conv1`, `layer1.0.downsample.0`, ...), so
// an ImageNet ResNet state dict maps by name (video/models/weights.h).
//
// Two forms:
//  - 2D (TSN, TSM, StNet): frames of all clips batched as images, [N*T, C, H, W]; TSM adds a
//    temporal shift at the input of every residual branch;
//  - 3D (Non-local C2D/I3D, PaddleVideo's resnet_video.py): [N, C, T, H, W] with Conv3d; a
//    bottleneck's first 1x1 conv may have a temporal kernel (I3D's "use_temp_convs"), the stem
//    conv a temporal kernel of its own, and a temporal max pool (2,1,1) follows layer1.
// Classifier heads derive from VideoResNet, so the trunk's state names stay at the top level.
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "engine/nn.h"

namespace oar::vision {
class ConvBnFold;        // vision/models/fused.h
class FoldedSequential;  // vision/models/fused.h
}  // namespace oar::vision

namespace oar::video {

struct VideoResNetOptions {
  int64_t depth = 50;           // 50, 101, 152 (bottleneck ResNets)
  std::vector<int64_t> blocks;  // blocks per stage (4 entries); empty: from depth
  int64_t width = 64;           // stem channels = first stage's planes (64 in ResNet-50)
  int64_t in_channels = 3;
  int64_t stem_pool_padding = 1;  // torchvision 1; the Caffe2/Paddle video ResNet 0

  // 2D only. TSM: > 0 shifts the residual branch input over this many segments.
  int64_t shift_segments = 0;
  int64_t shift_fold_div = 8;

  // 3D only.
  bool conv3d = false;
  int64_t stem_temporal_kernel = 1;  // odd
  // temporal_kernels[stage][block]: kernel of the block's conv1 (1 or 3); missing entries 1.
  std::vector<std::vector<int64_t>> temporal_kernels;
  bool temporal_pool_after_layer1 = false;  // PaddleVideo's pool2: max (2,1,1) stride (2,1,1)
};

// Blocks per stage of a depth (50, 101, 152); throws for others.
std::vector<int64_t> resnet_blocks(int64_t depth);

// 1x1 reduce (temporal kernel kt in 3D) -> 3x3 with the stride -> 1x1 expand x4, + shortcut,
// relu; then the optional `nonlocal` child (a block applied to the output, Non-local). In eval
// mode each conv -> BN [-> ReLU] runs as one folded conv, the shortcut's add and the last ReLU
// as the third conv's post-ops (vision/models/fused.h, as vision's ResNet); the shift still
// feeds only the residual branch.
class VideoBottleneck : public nn::Module {
 public:
  static constexpr int64_t expansion = 4;
  VideoBottleneck(int64_t in, int64_t planes, int64_t stride, int64_t temporal_kernel,
                  const VideoResNetOptions& o, Generator* gen);
  Tensor forward(const Tensor& x) override;
  std::string name() const override { return "VideoBottleneck"; }
  void attach_nonlocal(std::shared_ptr<nn::Module> block);
  // TSM: the number of segments the shift runs over (0: no shift).
  void set_shift_segments(int64_t segments) { shift_segments_ = segments; }

  std::shared_ptr<nn::Conv> conv1, conv2, conv3;
  std::shared_ptr<nn::BatchNorm> bn1, bn2, bn3;
  std::shared_ptr<nn::Sequential> downsample;  // null: identity
  std::shared_ptr<nn::Module> nonlocal;        // null: none

 private:
  int64_t shift_segments_, shift_fold_div_;
  std::shared_ptr<vision::ConvBnFold> fold1_, fold2_, fold3_;
  std::shared_ptr<vision::FoldedSequential> fold_down_;
};

class VideoResNet : public nn::Module {
 public:
  // Initialised as torchvision does (kaiming normal fan_out convs, unit BN); gen null: default.
  VideoResNet(const VideoResNetOptions& o, Generator* gen);
  // conv1 -> bn1 -> relu -> max pool (in eval mode conv1 -> bn1 -> relu as one folded conv).
  Tensor stem(const Tensor& x);
  // layer{i+1}, i in [0, 4) (and the temporal pool after layer1 in 3D).
  Tensor stage(int64_t i, const Tensor& x);
  // stem and the four stages.
  Tensor features(const Tensor& x);
  int64_t stage_channels(int64_t i) const { return options_.width * 4 * (int64_t{1} << i); }
  int64_t feature_channels() const { return stage_channels(3); }
  VideoBottleneck& block(int64_t stage, int64_t index);
  int64_t num_blocks(int64_t stage) const;
  const VideoResNetOptions& backbone_options() const { return options_; }

 private:
  VideoResNetOptions options_;
  std::shared_ptr<nn::Conv> conv1_;
  std::shared_ptr<nn::BatchNorm> bn1_;
  std::vector<std::shared_ptr<nn::Sequential>> layers_;
  std::shared_ptr<vision::ConvBnFold> stem_fold_;
};

// ResNet-50's I3D temporal kernels (PaddleVideo's obtain_arc, video_arc_choice 2) generalised to
// any block counts: every block of layer1, the even blocks of layer2/layer3, the odd blocks of
// layer4 get 3; the rest 1.
std::vector<std::vector<int64_t>> i3d_temporal_kernels(const std::vector<int64_t>& blocks);

}  // namespace oar::video
