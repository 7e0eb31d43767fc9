#include "video/models/video_resnet.h"

#include "engine/core/error.h"
#include "engine/nn/forward_hook.h"
#include "engine/ops.h"
#include "video/models/temporal_shift.h"
#include "vision/models/fused.h"
#include "vision/models/layers.h"

namespace oar::video {

namespace {

// A conv of the trunk: 2D kernel {k, k}, or 3D {kt, k, k} with "same" temporal padding.
std::shared_ptr<nn::Conv> trunk_conv(const VideoResNetOptions& o, int64_t in, int64_t out,
                                     int64_t k, int64_t stride, int64_t kt, Generator* gen) {
  nn::ConvOptions co;
  co.bias = false;
  if (o.conv3d) {
    co.stride = {1, stride, stride};
    co.padding = {(kt - 1) / 2, (k - 1) / 2, (k - 1) / 2};
    return std::make_shared<nn::Conv>(3, in, out, std::vector<int64_t>{kt, k, k}, co, gen);
  }
  co.stride = {stride};
  co.padding = {(k - 1) / 2};
  return std::make_shared<nn::Conv>(2, in, out, std::vector<int64_t>{k, k}, co, gen);
}

std::shared_ptr<nn::BatchNorm> trunk_bn(const VideoResNetOptions& o, int64_t c) {
  return std::make_shared<nn::BatchNorm>(o.conv3d ? 3 : 2, c);
}

// [relu](bn(conv(x)) [+ residual]): in eval one folded convolution with the add and the ReLU as
// its post-ops, in training one conv_bn_train node (vision/models/fused.h, as vision's ResNet
// blocks), otherwise module by module.
// Every conv -> BN of the trunk runs through here.
Tensor conv_bn_act(nn::Conv& conv, nn::BatchNorm& bn, vision::ConvBnFold& fold, bool training,
                   const Tensor& x, const Tensor& residual, bool relu_after) {
  if (vision::can_fold(conv, bn))
    return fold(conv, bn, x, residual, relu_after ? ConvActivation::relu : ConvActivation::none);
  if (training) fold.reset();  // the fold is stale after a training step; free it
  const ConvActivation act = relu_after ? ConvActivation::relu : ConvActivation::none;
  if (vision::can_fuse_train(conv, bn)) return vision::conv_bn_train(conv, bn, x, residual, act);
  Tensor h = bn(conv(x));
  if (residual.defined()) h = h + residual;
  return relu_after ? relu(h) : h;
}

}  // namespace

std::vector<int64_t> resnet_blocks(int64_t depth) {
  switch (depth) {
    case 50:
      return {3, 4, 6, 3};
    case 101:
      return {3, 4, 23, 3};
    case 152:
      return {3, 8, 36, 3};
    default:
      OAR_CHECK(false, "video resnet: depth must be 50, 101 or 152, got ", depth);
  }
  return {};
}

std::vector<std::vector<int64_t>> i3d_temporal_kernels(const std::vector<int64_t>& blocks) {
  std::vector<std::vector<int64_t>> k(blocks.size());
  for (size_t s = 0; s < blocks.size(); ++s)
    for (int64_t b = 0; b < blocks[s]; ++b) {
      const bool temporal = s == 0 ? true : s == 3 ? b % 2 == 1 : b % 2 == 0;
      k[s].push_back(temporal ? 3 : 1);
    }
  return k;
}

VideoBottleneck::VideoBottleneck(int64_t in, int64_t planes, int64_t stride,
                                 int64_t temporal_kernel, const VideoResNetOptions& o,
                                 Generator* gen)
    : shift_segments_(o.shift_segments),
      shift_fold_div_(o.shift_fold_div),
      fold1_(std::make_shared<vision::ConvBnFold>()),
      fold2_(std::make_shared<vision::ConvBnFold>()),
      fold3_(std::make_shared<vision::ConvBnFold>()),
      fold_down_(std::make_shared<vision::FoldedSequential>()) {
  conv1 = register_module("conv1", trunk_conv(o, in, planes, 1, 1, temporal_kernel, gen));
  bn1 = register_module("bn1", trunk_bn(o, planes));
  conv2 = register_module("conv2", trunk_conv(o, planes, planes, 3, stride, 1, gen));
  bn2 = register_module("bn2", trunk_bn(o, planes));
  conv3 = register_module("conv3", trunk_conv(o, planes, planes * expansion, 1, 1, 1, gen));
  bn3 = register_module("bn3", trunk_bn(o, planes * expansion));
  if (stride != 1 || in != planes * expansion) {
    downsample = register_module(
        "downsample",
        std::make_shared<nn::Sequential>(trunk_conv(o, in, planes * expansion, 1, stride, 1, gen),
                                         trunk_bn(o, planes * expansion)));
  }
}

void VideoBottleneck::attach_nonlocal(std::shared_ptr<nn::Module> block) {
  OAR_CHECK(!nonlocal, "VideoBottleneck: a non-local block is already attached");
  nonlocal = register_module("nonlocal", std::move(block));
}

Tensor VideoBottleneck::forward(const Tensor& x) {
  // TSM shifts only the residual branch; the shortcut keeps the frame's own features.
  const Tensor branch_in =
      shift_segments_ > 0 ? temporal_shift(x, shift_segments_, shift_fold_div_) : x;
  const bool training = is_training();
  Tensor h = conv_bn_act(*conv1, *bn1, *fold1_, training, branch_in, Tensor(), true);
  h = conv_bn_act(*conv2, *bn2, *fold2_, training, h, Tensor(), true);
  // The projection through FoldedSequential (folded in eval) unless a forward hook wants to see
  // the downsample module itself called.
  Tensor shortcut = x;
  if (downsample && training) fold_down_->reset();
  if (downsample)
    shortcut = nn::forward_hook_active() ? (*downsample)(x) : (*fold_down_)(*downsample, x);
  // Eval: the shortcut's add and the ReLU run inside the third conv.
  h = conv_bn_act(*conv3, *bn3, *fold3_, training, h, shortcut, true);
  return nonlocal ? (*nonlocal)(h) : h;
}

VideoResNet::VideoResNet(const VideoResNetOptions& o, Generator* gen)
    : options_(o), stem_fold_(std::make_shared<vision::ConvBnFold>()) {
  if (options_.blocks.empty()) options_.blocks = resnet_blocks(o.depth);
  const auto& blocks = options_.blocks;
  OAR_CHECK(blocks.size() == 4, "video resnet: blocks must have 4 entries, got ", blocks.size());
  for (const int64_t b : blocks) OAR_CHECK(b >= 1, "video resnet: every stage needs a block");
  OAR_CHECK(o.width >= 1 && o.in_channels >= 1, "video resnet: width and in_channels must be >= 1");
  OAR_CHECK(o.stem_temporal_kernel >= 1 && o.stem_temporal_kernel % 2 == 1,
            "video resnet: stem_temporal_kernel must be odd, got ", o.stem_temporal_kernel);
  OAR_CHECK(!(o.conv3d && o.shift_segments > 0), "video resnet: temporal shift is 2D only");
  Generator& g = gen ? *gen : default_generator();

  conv1_ = register_module("conv1", trunk_conv(options_, o.in_channels, o.width, 7, 2,
                                               o.conv3d ? o.stem_temporal_kernel : 1, gen));
  bn1_ = register_module("bn1", trunk_bn(options_, o.width));
  int64_t in = o.width;
  for (int64_t s = 0; s < 4; ++s) {
    auto stage = std::make_shared<nn::Sequential>();
    const int64_t planes = o.width << s;
    for (int64_t b = 0; b < blocks[s]; ++b) {
      int64_t kt = 1;
      if (o.conv3d && s < static_cast<int64_t>(o.temporal_kernels.size()) &&
          b < static_cast<int64_t>(o.temporal_kernels[s].size()))
        kt = o.temporal_kernels[s][b];
      OAR_CHECK(kt >= 1 && kt % 2 == 1, "video resnet: temporal kernels must be odd, got ", kt);
      stage->push_back(std::make_shared<VideoBottleneck>(in, planes, b == 0 && s > 0 ? 2 : 1, kt,
                                                         options_, gen));
      in = planes * VideoBottleneck::expansion;
    }
    layers_.push_back(register_module("layer" + std::to_string(s + 1), stage));
  }
  vision::init_like_torchvision(*this, g, /*linear_std=*/0);
}

Tensor VideoResNet::stem(const Tensor& x) {
  const int64_t rank = options_.conv3d ? 5 : 4;
  OAR_CHECK(x.dim() == rank && x.size(1) == options_.in_channels, name(), ": trunk input must be ",
            options_.conv3d ? "[N, C, T, H, W]" : "[N, C, H, W]",
            " with C = ", options_.in_channels, ", got ", shape_str(x.shape()));
  const Tensor h = conv_bn_act(*conv1_, *bn1_, *stem_fold_, is_training(), x, Tensor(), true);
  PoolParams p;
  const int64_t pad = options_.stem_pool_padding;
  if (options_.conv3d) {
    p.kernel = {1, 3, 3};
    p.stride = {1, 2, 2};
    p.padding = {0, pad, pad};
  } else {
    p.kernel = {3, 3};
    p.stride = {2, 2};
    p.padding = {pad, pad};
  }
  return max_pool(h, p);
}

Tensor VideoResNet::stage(int64_t i, const Tensor& x) {
  OAR_CHECK(i >= 0 && i < 4, "video resnet: no stage ", i);
  Tensor h = (*layers_[static_cast<size_t>(i)])(x);
  if (i == 0 && options_.conv3d && options_.temporal_pool_after_layer1) {
    OAR_CHECK(h.size(2) >= 2, name(), ": the temporal pool after layer1 needs >= 2 frames, got ",
              h.size(2));
    PoolParams p;
    p.kernel = {2, 1, 1};
    p.stride = {2, 1, 1};
    p.padding = {0, 0, 0};
    h = max_pool(h, p);
  }
  return h;
}

Tensor VideoResNet::features(const Tensor& x) {
  Tensor h = stem(x);
  for (int64_t i = 0; i < 4; ++i) h = stage(i, h);
  return h;
}

int64_t VideoResNet::num_blocks(int64_t s) const {
  OAR_CHECK(s >= 0 && s < 4, "video resnet: no stage ", s);
  return static_cast<int64_t>(layers_[static_cast<size_t>(s)]->size());
}

VideoBottleneck& VideoResNet::block(int64_t s, int64_t index) {
  OAR_CHECK(index >= 0 && index < num_blocks(s), "video resnet: layer", s + 1, " has no block ",
            index);
  return dynamic_cast<VideoBottleneck&>(
      *(*layers_[static_cast<size_t>(s)])[static_cast<size_t>(index)]);
}

}  // namespace oar::video
