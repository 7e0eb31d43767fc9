#include "vision/models/layers.h"

#include <ostream>

#include "engine/core/error.h"
#include "engine/ops.h"
#include "vision/models/fused.h"

namespace oar::vision {

Tensor ReLU::forward(const Tensor& x) {
  return relu(x);
}
Tensor ReLU6::forward(const Tensor& x) {
  return relu6(x);
}
Tensor Hardswish::forward(const Tensor& x) {
  return hard_swish(x);
}
Tensor Hardsigmoid::forward(const Tensor& x) {
  return hard_sigmoid(x);
}

std::shared_ptr<nn::Module> make_activation(Activation a) {
  switch (a) {
    case Activation::relu:
      return std::make_shared<ReLU>();
    case Activation::relu6:
      return std::make_shared<ReLU6>();
    case Activation::hardswish:
      return std::make_shared<Hardswish>();
    case Activation::none:
      break;
  }
  return nullptr;
}

MaxPool2d::MaxPool2d(int64_t kernel, int64_t stride, int64_t padding, bool ceil_mode) {
  params.kernel = {kernel, kernel};
  params.stride = {stride, stride};
  params.padding = {padding, padding};
  params.ceil_mode = ceil_mode;
}
Tensor MaxPool2d::forward(const Tensor& x) {
  return max_pool(x, params);
}
void MaxPool2d::describe(std::ostream& os) const {
  os << "MaxPool2d(kernel=" << params.kernel[0] << ", stride=" << params.stride[0]
     << ", padding=" << params.padding[0] << ")";
}

AvgPool2d::AvgPool2d(int64_t kernel, int64_t stride, bool ceil_mode, bool count_include_pad) {
  params.kernel = {kernel, kernel};
  params.stride = {stride, stride};
  params.padding = {0, 0};
  params.ceil_mode = ceil_mode;
  params.count_include_pad = count_include_pad;
}
Tensor AvgPool2d::forward(const Tensor& x) {
  return avg_pool(x, params);
}
void AvgPool2d::describe(std::ostream& os) const {
  os << "AvgPool2d(kernel=" << params.kernel[0] << ", stride=" << params.stride[0]
     << ", ceil_mode=" << params.ceil_mode << ")";
}

Tensor AdaptiveAvgPool2d::forward(const Tensor& x) {
  if (out_[0] == 1 && out_[1] == 1) return global_avg_pool(x);
  return adaptive_avg_pool(x, out_);
}

ConvNormActivation::ConvNormActivation(int64_t in, int64_t out, int64_t kernel,
                                       const ConvNormActOptions& o, Generator* gen) {
  nn::ConvOptions co;
  co.stride = {o.stride};
  co.padding = {(kernel - 1) / 2 * o.dilation};
  co.dilation = {o.dilation};
  co.groups = o.groups;
  co.bias = false;
  push_back(std::make_shared<nn::Conv2d>(in, out, std::vector<int64_t>{kernel, kernel}, co, gen));
  push_back(std::make_shared<nn::BatchNorm2d>(out, o.norm));
  if (auto act = make_activation(o.act)) push_back(act);
  fold_ = std::make_shared<FoldedSequential>();
}

Tensor ConvNormActivation::forward(const Tensor& x) {
  if (is_training()) fold_->reset();
  // Eval: folded; training: conv -> BN -> act as one conv_bn_train node; the items one by one
  // where neither applies (fused.h).
  return (*fold_)(*this, x);
}

SqueezeExcitation::SqueezeExcitation(int64_t channels, int64_t squeeze_channels, Generator* gen) {
  fc1 = register_module(
      "fc1", std::make_shared<nn::Conv2d>(channels, squeeze_channels, std::vector<int64_t>{1, 1},
                                          nn::ConvOptions{}, gen));
  fc2 = register_module(
      "fc2", std::make_shared<nn::Conv2d>(squeeze_channels, channels, std::vector<int64_t>{1, 1},
                                          nn::ConvOptions{}, gen));
}

Tensor SqueezeExcitation::forward(const Tensor& x) {
  Tensor s = global_avg_pool(x);
  s = hard_sigmoid((*fc2)(relu((*fc1)(s))));
  return x * s;
}

int64_t make_divisible(double v, int64_t divisor) {
  int64_t rounded = static_cast<int64_t>(v + divisor / 2.0) / divisor * divisor;
  if (rounded < divisor) rounded = divisor;
  if (static_cast<double>(rounded) < 0.9 * v) rounded += divisor;
  return rounded;
}

void init_like_torchvision(nn::Module& model, Generator& gen, double linear_std) {
  for (auto& [name, m] : model.named_modules()) {
    if (auto* conv = dynamic_cast<nn::Conv*>(m)) {
      nn::init::kaiming_normal_(conv->weight, gen, 0.0, nn::init::FanMode::fan_out, "relu");
      if (conv->bias.defined()) nn::init::zeros_(conv->bias);
    } else if (auto* bn = dynamic_cast<nn::BatchNorm*>(m)) {
      if (bn->weight.defined()) nn::init::ones_(bn->weight);
      if (bn->bias.defined()) nn::init::zeros_(bn->bias);
    } else if (auto* fc = dynamic_cast<nn::Linear*>(m)) {
      if (linear_std > 0) {
        nn::init::normal_(fc->weight, gen, 0.0, linear_std);
        if (fc->bias.defined()) nn::init::zeros_(fc->bias);
      }
    }
  }
}

}  // namespace oar::vision
