#pragma once
// Parameter initialisers, in place (no autograd), with PyTorch's formulas (torch.nn.init).
// Every draw comes from the given generator, so an initialisation repeats under a seed.
#include <string>

#include "engine/core/generator.h"
#include "engine/tensor/tensor.h"

namespace oar::nn::init {

enum class FanMode { fan_in, fan_out };

// torch.nn.init.calculate_gain: linear/conv*/sigmoid 1, tanh 5/3, relu sqrt(2),
// leaky_relu sqrt(2 / (1 + param^2)), selu 3/4.
double calculate_gain(const std::string& nonlinearity, double param = 0.01);
// (fan_in, fan_out) of a weight of rank >= 2: size(1) and size(0) times the receptive field.
std::pair<int64_t, int64_t> fans(const Tensor& t);

Tensor& uniform_(Tensor& t, Generator& gen, double low = 0.0, double high = 1.0);
Tensor& normal_(Tensor& t, Generator& gen, double mean = 0.0, double std = 1.0);
// Normal(mean, std) truncated to [a, b] (inverse-CDF sampling, as PyTorch).
Tensor& trunc_normal_(Tensor& t, Generator& gen, double mean = 0.0, double std = 1.0,
                      double a = -2.0, double b = 2.0);
Tensor& constant_(Tensor& t, double value);
Tensor& zeros_(Tensor& t);
Tensor& ones_(Tensor& t);
// bound = gain * sqrt(3 / fan), gain = calculate_gain(nonlinearity, a).
Tensor& kaiming_uniform_(Tensor& t, Generator& gen, double a = 0.0, FanMode mode = FanMode::fan_in,
                         const std::string& nonlinearity = "leaky_relu");
// std = gain / sqrt(fan).
Tensor& kaiming_normal_(Tensor& t, Generator& gen, double a = 0.0, FanMode mode = FanMode::fan_in,
                        const std::string& nonlinearity = "leaky_relu");
// bound = gain * sqrt(6 / (fan_in + fan_out)).
Tensor& xavier_uniform_(Tensor& t, Generator& gen, double gain = 1.0);
// std = gain * sqrt(2 / (fan_in + fan_out)).
Tensor& xavier_normal_(Tensor& t, Generator& gen, double gain = 1.0);

// nn.Linear / nn.ConvNd defaults: weight kaiming_uniform(a = sqrt(5)), i.e. U(-1/sqrt(fan_in),
// 1/sqrt(fan_in)); bias (if defined) U(-1/sqrt(fan_in), 1/sqrt(fan_in)).
void default_linear_init(Tensor& weight, Tensor& bias, Generator& gen);

}  // namespace oar::nn::init
