#include "vision/models/resnet.h"

#include <cctype>
#include <string>
#include <vector>

#include "engine/core/error.h"
#include "engine/ops.h"
#include "engine/ops/conv_layout.h"
#include "vision/models/fused.h"
#include "vision/models/layers.h"

namespace oar::vision {

namespace {

std::shared_ptr<nn::Conv2d> conv(int64_t in, int64_t out, int64_t k, int64_t stride,
                                 Generator* gen) {
  nn::ConvOptions co;
  co.stride = {stride};
  co.padding = {(k - 1) / 2};
  co.bias = false;
  return std::make_shared<nn::Conv2d>(in, out, std::vector<int64_t>{k, k}, co, gen);
}
std::shared_ptr<nn::BatchNorm2d> bn(int64_t c) {
  return std::make_shared<nn::BatchNorm2d>(c);
}

enum class Shortcut { projection, projection_avg_pool, zero_pad };

// The shortcut of a block whose output shape differs from its input.
//   projection:          1x1 conv with the stride, BN                   (downsample.0, .1)
//   projection_avg_pool: 2x2 avg pool (stride 2 only), 1x1 conv, BN     (downsample.1, .2)
//   zero_pad:            take every stride-th pixel, add zero channels  (no parameters)
class ZeroPadShortcut : public nn::Module {
 public:
  ZeroPadShortcut(int64_t in, int64_t out, int64_t stride) : in_(in), out_(out), stride_(stride) {}
  Tensor forward(const Tensor& x) override {
    Tensor h = x;
    if (stride_ > 1) h = h.slice(2, 0, h.size(2), stride_).slice(3, 0, h.size(3), stride_);
    const int64_t extra = out_ - in_;
    return pad(h, {0, 0, extra / 2, extra - extra / 2, 0, 0, 0, 0});
  }
  std::string name() const override { return "ZeroPadShortcut"; }

 private:
  int64_t in_, out_, stride_;
};

std::shared_ptr<nn::Module> make_shortcut(Shortcut kind, int64_t in, int64_t out, int64_t stride,
                                          Generator* gen) {
  if (kind == Shortcut::zero_pad) return std::make_shared<ZeroPadShortcut>(in, out, stride);
  auto s = std::make_shared<nn::Sequential>();
  if (kind == Shortcut::projection_avg_pool) {
    if (stride > 1)
      s->push_back(std::make_shared<AvgPool2d>(stride, stride, /*ceil_mode=*/true,
                                               /*count_include_pad=*/false));
    else
      s->push_back(std::make_shared<Identity>());
    s->push_back(conv(in, out, 1, 1, gen));
  } else {
    s->push_back(conv(in, out, 1, stride, gen));
  }
  s->push_back(bn(out));
  return s;
}

class ResidualBlock : public nn::Module {
 public:
  // The BN whose gamma zero_init_residual zeroes.
  virtual nn::BatchNorm2d& last_bn() = 0;

 protected:
  Tensor shortcut(const Tensor& x) { return downsample_ ? (*downsample_)(x) : x; }
  // The shortcut with a projection's conv -> BN folded (eval mode) or as one conv_bn_train node
  // (training; fused.h).
  Tensor folded_shortcut(const Tensor& x) {
    if (auto* seq = dynamic_cast<nn::Sequential*>(downsample_.get())) return fold_down_(*seq, x);
    return shortcut(x);
  }
  void reset_folds() { fold_down_.reset(); }
  void set_downsample(std::shared_ptr<nn::Module> d) {
    if (d) downsample_ = register_module("downsample", std::move(d));
  }

 private:
  std::shared_ptr<nn::Module> downsample_;
  FoldedSequential fold_down_;
};

// 3x3 -> 3x3, expansion 1 (ResNet-18/34 and the CIFAR ResNets).
class BasicBlock : public ResidualBlock {
 public:
  static constexpr int64_t expansion = 1;
  BasicBlock(int64_t in, int64_t planes, int64_t stride, std::shared_ptr<nn::Module> downsample,
             Generator* gen) {
    conv1 = register_module("conv1", conv(in, planes, 3, stride, gen));
    bn1 = register_module("bn1", bn(planes));
    conv2 = register_module("conv2", conv(planes, planes, 3, 1, gen));
    bn2 = register_module("bn2", bn(planes));
    set_downsample(std::move(downsample));
  }
  Tensor forward(const Tensor& x) override {
    if (can_fold(*conv1, *bn1) && can_fold(*conv2, *bn2)) {  // eval: 2 fused convs (fused.h)
      Tensor h = fold1_(*conv1, *bn1, x, Tensor(), ConvActivation::relu);
      return fold2_(*conv2, *bn2, h, folded_shortcut(x), ConvActivation::relu);
    }
    if (is_training()) fold1_.reset(), fold2_.reset(), reset_folds();
    if (can_fuse_train(*conv1, *bn1) && can_fuse_train(*conv2, *bn2)) {  // training (fused.h)
      Tensor h = conv_bn_train(*conv1, *bn1, x, Tensor(), ConvActivation::relu);
      return conv_bn_train(*conv2, *bn2, h, folded_shortcut(x), ConvActivation::relu);
    }
    Tensor h = relu((*bn1)((*conv1)(x)));
    h = (*bn2)((*conv2)(h));
    return relu(h + shortcut(x));
  }
  nn::BatchNorm2d& last_bn() override { return *bn2; }
  std::string name() const override { return "BasicBlock"; }
  std::shared_ptr<nn::Conv2d> conv1, conv2;
  std::shared_ptr<nn::BatchNorm2d> bn1, bn2;

 private:
  ConvBnFold fold1_, fold2_;
};

// 1x1 reduce -> 3x3 (carries the stride: v1.5) -> 1x1 expand x4 (ResNet-50/101/152).
class Bottleneck : public ResidualBlock {
 public:
  static constexpr int64_t expansion = 4;
  Bottleneck(int64_t in, int64_t planes, int64_t stride, std::shared_ptr<nn::Module> downsample,
             Generator* gen) {
    conv1 = register_module("conv1", conv(in, planes, 1, 1, gen));
    bn1 = register_module("bn1", bn(planes));
    conv2 = register_module("conv2", conv(planes, planes, 3, stride, gen));
    bn2 = register_module("bn2", bn(planes));
    conv3 = register_module("conv3", conv(planes, planes * expansion, 1, 1, gen));
    bn3 = register_module("bn3", bn(planes * expansion));
    set_downsample(std::move(downsample));
  }
  Tensor forward(const Tensor& x) override {
    if (can_fold(*conv1, *bn1) && can_fold(*conv2, *bn2) && can_fold(*conv3, *bn3)) {
      Tensor h = fold1_(*conv1, *bn1, x, Tensor(), ConvActivation::relu);  // eval (fused.h)
      h = fold2_(*conv2, *bn2, h, Tensor(), ConvActivation::relu);
      return fold3_(*conv3, *bn3, h, folded_shortcut(x), ConvActivation::relu);
    }
    if (is_training()) fold1_.reset(), fold2_.reset(), fold3_.reset(), reset_folds();
    if (can_fuse_train(*conv1, *bn1) && can_fuse_train(*conv2, *bn2) &&
        can_fuse_train(*conv3, *bn3)) {  // training (fused.h)
      Tensor h = conv_bn_train(*conv1, *bn1, x, Tensor(), ConvActivation::relu);
      h = conv_bn_train(*conv2, *bn2, h, Tensor(), ConvActivation::relu);
      return conv_bn_train(*conv3, *bn3, h, folded_shortcut(x), ConvActivation::relu);
    }
    Tensor h = relu((*bn1)((*conv1)(x)));
    h = relu((*bn2)((*conv2)(h)));
    h = (*bn3)((*conv3)(h));
    return relu(h + shortcut(x));
  }
  nn::BatchNorm2d& last_bn() override { return *bn3; }
  std::string name() const override { return "Bottleneck"; }
  std::shared_ptr<nn::Conv2d> conv1, conv2, conv3;
  std::shared_ptr<nn::BatchNorm2d> bn1, bn2, bn3;

 private:
  ConvBnFold fold1_, fold2_, fold3_;
};

template <typename Block>
std::shared_ptr<nn::Sequential> make_stage(int64_t& in, int64_t planes, int64_t blocks,
                                           int64_t stride, Shortcut kind, Generator* gen) {
  auto stage = std::make_shared<nn::Sequential>();
  for (int64_t b = 0; b < blocks; ++b) {
    const int64_t s = b == 0 ? stride : 1;
    const int64_t out = planes * Block::expansion;
    std::shared_ptr<nn::Module> down;
    if (s != 1 || in != out) down = make_shortcut(kind, in, out, s, gen);
    stage->push_back(std::make_shared<Block>(in, planes, s, down, gen));
    in = out;
  }
  return stage;
}

}  // namespace

ResNetOptions resnet_variant(const std::string& name) {
  ResNetOptions o;
  std::string rest = name;
  OAR_CHECK(rest.rfind("resnet", 0) == 0, "not a ResNet variant: '", name, "'");
  rest = rest.substr(6);
  size_t digits = 0;
  while (digits < rest.size() && std::isdigit(static_cast<unsigned char>(rest[digits]))) ++digits;
  OAR_CHECK(digits > 0, "not a ResNet variant: '", name, "'");
  o.depth = std::stoll(rest.substr(0, digits));
  const std::string suffix = rest.substr(digits);
  if (suffix == "_vd")
    o.vd = true;
  else if (suffix == "_cifar")
    o.cifar = true;
  else
    OAR_CHECK(suffix.empty(), "not a ResNet variant: '", name, "' (suffixes: _vd, _cifar)");
  return o;
}

ResNet::ResNet(const ResNetOptions& o, Generator* gen)
    : options(o),
      stem_fold_(std::make_shared<ConvBnFold>()),
      deep_fold0_(std::make_shared<ConvBnFold>()),
      deep_fold1_(std::make_shared<ConvBnFold>()) {
  Generator& g = gen ? *gen : default_generator();
  int64_t in = 0;
  if (o.cifar) {
    OAR_CHECK(o.depth >= 8 && (o.depth - 2) % 6 == 0, "resnet_cifar: depth must be 6n+2, got ",
              o.depth);
    const int64_t n = (o.depth - 2) / 6;
    conv1_ = register_module("conv1", conv(o.in_channels, 16, 3, 1, gen));
    bn1_ = register_module("bn1", bn(16));
    in = 16;
    const int64_t planes[] = {16, 32, 64}, strides[] = {1, 2, 2};
    for (int s = 0; s < 3; ++s)
      layers_.push_back(
          make_stage<BasicBlock>(in, planes[s], n, strides[s], Shortcut::zero_pad, gen));
  } else {
    std::vector<int64_t> blocks;
    bool bottleneck = o.depth >= 50;
    switch (o.depth) {
      case 18:
        blocks = {2, 2, 2, 2};
        break;
      case 34:
      case 50:
        blocks = {3, 4, 6, 3};
        break;
      case 101:
        blocks = {3, 4, 23, 3};
        break;
      case 152:
        blocks = {3, 8, 36, 3};
        break;
      default:
        OAR_CHECK(false, "resnet: depth must be 18, 34, 50, 101 or 152, got ", o.depth);
    }
    const int64_t stem_stride = o.small_input ? 1 : 2;
    if (o.vd) {
      auto stem = std::make_shared<nn::Sequential>(
          conv(o.in_channels, 32, 3, stem_stride, gen), bn(32), std::make_shared<ReLU>(),
          conv(32, 32, 3, 1, gen), bn(32), std::make_shared<ReLU>(), conv(32, 64, 3, 1, gen));
      conv1_ = register_module("conv1", stem);
    } else {
      conv1_ = register_module("conv1",
                               conv(o.in_channels, 64, o.small_input ? 3 : 7, stem_stride, gen));
    }
    bn1_ = register_module("bn1", bn(64));
    if (!o.small_input) maxpool_ = register_module("maxpool", std::make_shared<MaxPool2d>(3, 2, 1));
    in = 64;
    const Shortcut kind = o.vd ? Shortcut::projection_avg_pool : Shortcut::projection;
    for (int s = 0; s < 4; ++s) {
      const int64_t planes = int64_t{64} << s, stride = s == 0 ? 1 : 2;
      layers_.push_back(bottleneck
                            ? make_stage<Bottleneck>(in, planes, blocks[s], stride, kind, gen)
                            : make_stage<BasicBlock>(in, planes, blocks[s], stride, kind, gen));
    }
  }
  for (size_t s = 0; s < layers_.size(); ++s)
    register_module("layer" + std::to_string(s + 1), layers_[s]);
  dropout_ = register_module("dropout", std::make_shared<nn::Dropout>(o.dropout));
  fc_ = register_module("fc", std::make_shared<nn::Linear>(in, o.num_classes, true, gen));

  init_like_torchvision(*this, g, /*linear_std=*/0);  // torchvision keeps fc's default init
  if (o.zero_init_residual)
    for (auto& layer : layers_)
      for (size_t b = 0; b < layer->size(); ++b) {
        auto& block = dynamic_cast<ResidualBlock&>(*(*layer)[b]);
        nn::init::zeros_(block.last_bn().weight);
      }
}

Tensor ResNet::forward(const Tensor& x) {
  return (*fc_)((*dropout_)(pooled_features(x)));
}

Tensor ResNet::folded_stem(const Tensor& x) {
  auto* stem = dynamic_cast<nn::Conv*>(conv1_.get());
  auto* deep = dynamic_cast<nn::Sequential*>(conv1_.get());
  nn::Conv *c0 = nullptr, *c3 = nullptr;
  nn::BatchNorm *b1 = nullptr, *b4 = nullptr;
  if (deep && deep->size() == 7) {  // vd: conv bn relu conv bn relu conv (the constructor's)
    c0 = dynamic_cast<nn::Conv*>((*deep)[0].get());
    b1 = dynamic_cast<nn::BatchNorm*>((*deep)[1].get());
    c3 = dynamic_cast<nn::Conv*>((*deep)[3].get());
    b4 = dynamic_cast<nn::BatchNorm*>((*deep)[4].get());
    stem = dynamic_cast<nn::Conv*>((*deep)[6].get());
    if (!c0 || !b1 || !c3 || !b4 || !can_fold(*c0, *b1) || !can_fold(*c3, *b4)) return Tensor();
  }
  if (!stem || !can_fold(*stem, *bn1_)) return Tensor();
  // On the CPU the folded trunk runs channels-last (conv_layout.h): every conv, the max pool and
  // the global average pool then read and write oneDNN's NHWC layout directly instead of reordering
  // each activation in and out of it.
  Tensor h = x.device().is_cpu() ? to_channels_last(x) : x;
  if (c0) {
    h = (*deep_fold0_)(*c0, *b1, h, Tensor(), ConvActivation::relu);
    h = (*deep_fold1_)(*c3, *b4, h, Tensor(), ConvActivation::relu);
  }
  return (*stem_fold_)(*stem, *bn1_, h, Tensor(), ConvActivation::relu);
}

Tensor ResNet::pooled_features(const Tensor& x) {
  OAR_CHECK(x.dim() == 4 && x.size(1) == options.in_channels, name(), ": input must be [N, ",
            options.in_channels, ", H, W], got ", shape_str(x.shape()));
  Tensor h = folded_stem(x);  // eval: conv -> BN -> ReLU as one conv (fused.h)
  if (!h.defined()) {
    auto* stem = dynamic_cast<nn::Conv*>(conv1_.get());
    if (is_training()) stem_fold_->reset(), deep_fold0_->reset(), deep_fold1_->reset();
    if (stem && can_fuse_train(*stem, *bn1_))  // training: one conv_bn_train node
      h = conv_bn_train(*stem, *bn1_, x, Tensor(), ConvActivation::relu);
    else
      h = relu((*bn1_)((*conv1_)(x)));
  }
  if (maxpool_) h = (*maxpool_)(h);
  for (auto& layer : layers_) h = (*layer)(h);
  return global_avg_pool(h).flatten(1);
}

}  // namespace oar::vision
