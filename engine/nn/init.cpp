#include "engine/nn/init.h"

#include <cmath>
#include <vector>

#include "engine/autograd/grad_mode.h"
#include "engine/core/error.h"

namespace oar::nn::init {

double calculate_gain(const std::string& nl, double param) {
  if (nl == "linear" || nl == "identity" || nl == "sigmoid" || nl.rfind("conv", 0) == 0) return 1.0;
  if (nl == "tanh") return 5.0 / 3.0;
  if (nl == "relu") return std::sqrt(2.0);
  if (nl == "leaky_relu") return std::sqrt(2.0 / (1.0 + param * param));
  if (nl == "selu") return 0.75;
  OAR_FAIL("init: unknown nonlinearity '", nl,
           "' (allowed: linear, conv1d/2d/3d, sigmoid, tanh, relu, leaky_relu, selu)");
}

std::pair<int64_t, int64_t> fans(const Tensor& t) {
  OAR_CHECK(t.dim() >= 2, "init: fan in/out needs a tensor of rank >= 2, got shape ",
            shape_str(t.shape()));
  int64_t receptive = 1;
  for (int64_t d = 2; d < t.dim(); ++d) receptive *= t.size(d);
  return {t.size(1) * receptive, t.size(0) * receptive};
}

namespace {
int64_t fan(const Tensor& t, FanMode mode) {
  auto [in, out] = fans(t);
  return mode == FanMode::fan_in ? in : out;
}
void assign(Tensor& t, const Tensor& values) {
  NoGradGuard no_grad;
  t.copy_(values);
}
}  // namespace

Tensor& uniform_(Tensor& t, Generator& gen, double low, double high) {
  assign(t, rand(t.shape(), &gen, low, high, DType::f32));
  return t;
}

Tensor& normal_(Tensor& t, Generator& gen, double mean, double std) {
  assign(t, randn(t.shape(), &gen, mean, std, DType::f32));
  return t;
}

namespace {
// Inverse error function (Giles' single-precision approximation refined by two Newton steps).
double erfinv(double x) {
  double w = -std::log((1.0 - x) * (1.0 + x));
  double p;
  if (w < 5.0) {
    w -= 2.5;
    p = 2.81022636e-08;
    p = 3.43273939e-07 + p * w;
    p = -3.5233877e-06 + p * w;
    p = -4.39150654e-06 + p * w;
    p = 0.00021858087 + p * w;
    p = -0.00125372503 + p * w;
    p = -0.00417768164 + p * w;
    p = 0.246640727 + p * w;
    p = 1.50140941 + p * w;
  } else {
    w = std::sqrt(w) - 3.0;
    p = -0.000200214257;
    p = 0.000100950558 + p * w;
    p = 0.00134934322 + p * w;
    p = -0.00367342844 + p * w;
    p = 0.00573950773 + p * w;
    p = -0.0076224613 + p * w;
    p = 0.00943887047 + p * w;
    p = 1.00167406 + p * w;
    p = 2.83297682 + p * w;
  }
  double y = p * x;
  for (int i = 0; i < 2; ++i) {
    const double err = std::erf(y) - x;
    y -= err / (2.0 / std::sqrt(M_PI) * std::exp(-y * y));
  }
  return y;
}
}  // namespace

Tensor& trunc_normal_(Tensor& t, Generator& gen, double mean, double std, double a, double b) {
  OAR_CHECK(a < b && std > 0, "trunc_normal_: need a < b and std > 0, got a=", a, " b=", b,
            " std=", std);
  auto cdf = [](double x) { return (1.0 + std::erf(x / std::sqrt(2.0))) / 2.0; };
  const double l = cdf((a - mean) / std);
  const double u = cdf((b - mean) / std);
  std::vector<float> v(static_cast<size_t>(t.numel()));
  for (auto& x : v) {
    const double p = 2.0 * l - 1.0 + (2.0 * u - 2.0 * l) * gen.uniform();
    double y =
        erfinv(std::min(std::max(p, -1.0 + 1e-15), 1.0 - 1e-15)) * std * std::sqrt(2.0) + mean;
    x = static_cast<float>(std::min(std::max(y, a), b));
  }
  assign(t, tensor<float>(v, t.shape()));
  return t;
}

Tensor& constant_(Tensor& t, double value) {
  NoGradGuard no_grad;
  t.fill_(value);
  return t;
}
Tensor& zeros_(Tensor& t) {
  return constant_(t, 0.0);
}
Tensor& ones_(Tensor& t) {
  return constant_(t, 1.0);
}

Tensor& kaiming_uniform_(Tensor& t, Generator& gen, double a, FanMode mode,
                         const std::string& nonlinearity) {
  const double bound =
      calculate_gain(nonlinearity, a) * std::sqrt(3.0 / static_cast<double>(fan(t, mode)));
  return uniform_(t, gen, -bound, bound);
}

Tensor& kaiming_normal_(Tensor& t, Generator& gen, double a, FanMode mode,
                        const std::string& nonlinearity) {
  const double std = calculate_gain(nonlinearity, a) / std::sqrt(static_cast<double>(fan(t, mode)));
  return normal_(t, gen, 0.0, std);
}

Tensor& xavier_uniform_(Tensor& t, Generator& gen, double gain) {
  auto [in, out] = fans(t);
  const double bound = gain * std::sqrt(6.0 / static_cast<double>(in + out));
  return uniform_(t, gen, -bound, bound);
}

Tensor& xavier_normal_(Tensor& t, Generator& gen, double gain) {
  auto [in, out] = fans(t);
  return normal_(t, gen, 0.0, gain * std::sqrt(2.0 / static_cast<double>(in + out)));
}

void default_linear_init(Tensor& weight, Tensor& bias, Generator& gen) {
  kaiming_uniform_(weight, gen, std::sqrt(5.0));
  if (bias.defined()) {
    const int64_t fan_in = fans(weight).first;
    const double bound = fan_in > 0 ? 1.0 / std::sqrt(static_cast<double>(fan_in)) : 0.0;
    uniform_(bias, gen, -bound, bound);
  }
}

}  // namespace oar::nn::init
