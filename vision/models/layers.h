#pragma once
// The parameter-free layers and small blocks torchvision assembles its classifiers from, as
// modules, so that a Sequential counts them like torchvision does and state names line up
// (`features.3.weight` in VGG is the conv after ReLU and max pool).
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "engine/nn.h"
#include "engine/ops/pool.h"

namespace oar::vision {

class FoldedSequential;  // vision/models/fused.h

class Identity : public nn::Module {
 public:
  Tensor forward(const Tensor& x) override { return x; }
  std::string name() const override { return "Identity"; }
};
class ReLU : public nn::Module {
 public:
  Tensor forward(const Tensor& x) override;
  std::string name() const override { return "ReLU"; }
};
class ReLU6 : public nn::Module {
 public:
  Tensor forward(const Tensor& x) override;
  std::string name() const override { return "ReLU6"; }
};
class Hardswish : public nn::Module {
 public:
  Tensor forward(const Tensor& x) override;
  std::string name() const override { return "Hardswish"; }
};
class Hardsigmoid : public nn::Module {
 public:
  Tensor forward(const Tensor& x) override;
  std::string name() const override { return "Hardsigmoid"; }
};

enum class Activation { none, relu, relu6, hardswish };
// The module for `a` (none: undefined pointer).
std::shared_ptr<nn::Module> make_activation(Activation a);

// Square windows; padding symmetric.
class MaxPool2d : public nn::Module {
 public:
  MaxPool2d(int64_t kernel, int64_t stride, int64_t padding = 0, bool ceil_mode = false);
  Tensor forward(const Tensor& x) override;
  std::string name() const override { return "MaxPool2d"; }
  void describe(std::ostream& os) const override;
  PoolParams params;
};
class AvgPool2d : public nn::Module {
 public:
  AvgPool2d(int64_t kernel, int64_t stride, bool ceil_mode = false, bool count_include_pad = true);
  Tensor forward(const Tensor& x) override;
  std::string name() const override { return "AvgPool2d"; }
  void describe(std::ostream& os) const override;
  PoolParams params;
};
// [N, C, H, W] -> [N, C, out_h, out_w] with PyTorch's adaptive windows.
class AdaptiveAvgPool2d : public nn::Module {
 public:
  AdaptiveAvgPool2d(int64_t out_h, int64_t out_w) : out_{out_h, out_w} {}
  Tensor forward(const Tensor& x) override;
  std::string name() const override { return "AdaptiveAvgPool2d"; }

 private:
  std::vector<int64_t> out_;
};

// conv (bias only when there is no norm) -> BatchNorm2d -> activation, as children 0, 1, 2
// (torchvision's Conv2dNormActivation); padding (kernel - 1) / 2 * dilation.
struct ConvNormActOptions {
  int64_t stride = 1;
  int64_t groups = 1;
  int64_t dilation = 1;
  Activation act = Activation::relu;
  nn::BatchNormOptions norm;
};
class ConvNormActivation : public nn::Sequential {
 public:
  ConvNormActivation(int64_t in, int64_t out, int64_t kernel, const ConvNormActOptions& o,
                     Generator* gen);
  // In eval mode conv -> BN [-> ReLU | ReLU6] runs as one folded conv (vision/models/fused.h).
  Tensor forward(const Tensor& x) override;
  std::string name() const override { return "ConvNormActivation"; }

 private:
  std::shared_ptr<FoldedSequential> fold_;
};

// Squeeze-and-excitation (torchvision.ops.SqueezeExcitation): x * scale_act(fc2(act(fc1(pool(x)))))
// with fc1/fc2 1x1 convolutions with bias; MobileNetV3 uses ReLU and Hardsigmoid.
class SqueezeExcitation : public nn::Module {
 public:
  SqueezeExcitation(int64_t channels, int64_t squeeze_channels, Generator* gen);
  Tensor forward(const Tensor& x) override;
  std::string name() const override { return "SqueezeExcitation"; }
  std::shared_ptr<nn::Conv2d> fc1, fc2;
};

// Channels rounded to the nearest multiple of `divisor`, never below divisor nor more than 10%
// below v (the MobileNet papers' rule, torchvision's _make_divisible).
int64_t make_divisible(double v, int64_t divisor = 8);

// torchvision's initialisation of its classifiers: every conv kaiming_normal_(fan_out, relu) with
// zero bias, every norm weight 1 and bias 0; Linear layers N(0, linear_std) with zero bias, or
// left at their default init when linear_std <= 0.
void init_like_torchvision(nn::Module& model, Generator& gen, double linear_std);

}  // namespace oar::vision
