#include "engine/nn/init.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>

#include "engine/core/error.h"

using namespace oar;
using namespace oar::nn;

namespace {
struct Stats {
  double mean, std, min, max;
};
Stats stats(const Tensor& t) {
  auto v = t.to_vector<float>();
  double s = 0, s2 = 0;
  for (float x : v) s += x;
  const double m = s / static_cast<double>(v.size());
  for (float x : v) s2 += (x - m) * (x - m);
  return {m, std::sqrt(s2 / static_cast<double>(v.size())), *std::min_element(v.begin(), v.end()),
          *std::max_element(v.begin(), v.end())};
}
}  // namespace

TEST(Init, GainsAndFans) {
  EXPECT_DOUBLE_EQ(init::calculate_gain("relu"), std::sqrt(2.0));
  EXPECT_DOUBLE_EQ(init::calculate_gain("tanh"), 5.0 / 3.0);
  EXPECT_DOUBLE_EQ(init::calculate_gain("conv2d"), 1.0);
  EXPECT_DOUBLE_EQ(init::calculate_gain("leaky_relu", std::sqrt(5.0)), std::sqrt(1.0 / 3.0));
  EXPECT_DOUBLE_EQ(init::calculate_gain("selu"), 0.75);
  EXPECT_THROW(init::calculate_gain("swish"), Error);
  Tensor w = empty({8, 4, 3, 3});
  EXPECT_EQ(init::fans(w), (std::pair<int64_t, int64_t>{36, 72}));
  Tensor b = empty({8});
  EXPECT_THROW(init::fans(b), Error);
}

TEST(Init, KaimingAndXavierRanges) {
  Generator g(1);
  Tensor w = empty({256, 512});
  init::kaiming_uniform_(w, g, 0.0, init::FanMode::fan_in, "relu");
  const double bound = std::sqrt(2.0) * std::sqrt(3.0 / 512);
  Stats s = stats(w);
  EXPECT_LE(s.max, bound);
  EXPECT_GE(s.min, -bound);
  EXPECT_NEAR(s.std, bound / std::sqrt(3.0), 0.01 * bound);
  init::kaiming_normal_(w, g, 0.0, init::FanMode::fan_out, "relu");
  EXPECT_NEAR(stats(w).std, std::sqrt(2.0 / 256), 0.02 * std::sqrt(2.0 / 256));
  init::xavier_uniform_(w, g);
  const double xb = std::sqrt(6.0 / (256 + 512));
  s = stats(w);
  EXPECT_LE(s.max, xb);
  EXPECT_NEAR(s.std, xb / std::sqrt(3.0), 0.01 * xb);
  init::xavier_normal_(w, g, 2.0);
  EXPECT_NEAR(stats(w).std, 2.0 * std::sqrt(2.0 / 768), 0.02 * 2.0 * std::sqrt(2.0 / 768));
  // Linear default: U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for weight and bias
  Tensor lw = empty({64, 100}), lb = empty({64});
  init::default_linear_init(lw, lb, g);
  EXPECT_LE(stats(lw).max, 0.1);
  EXPECT_GT(stats(lw).max, 0.09);
  EXPECT_LE(stats(lb).max, 0.1);
  EXPECT_GE(stats(lb).min, -0.1);
}

TEST(Init, TruncNormalStaysInBounds) {
  Generator g(2);
  Tensor t = empty({20000});
  init::trunc_normal_(t, g, 0.0, 1.0, -2.0, 2.0);
  Stats s = stats(t);
  EXPECT_GE(s.min, -2.0);
  EXPECT_LE(s.max, 2.0);
  EXPECT_NEAR(s.mean, 0.0, 0.03);
  EXPECT_NEAR(s.std, 0.8796, 0.02);                   // std of N(0,1) truncated to [-2, 2]
  init::trunc_normal_(t, g, 0.0, 0.02, -0.04, 0.04);  // BERT/ViT style
  s = stats(t);
  EXPECT_GE(s.min, -0.04);
  EXPECT_LE(s.max, 0.04);
}

TEST(Init, DeterministicUnderSeedAndConstants) {
  Generator a(5), b(5);
  Tensor x = empty({10}), y = empty({10});
  init::normal_(x, a, 1.0, 0.5);
  init::normal_(y, b, 1.0, 0.5);
  EXPECT_EQ(x.to_vector<float>(), y.to_vector<float>());
  init::uniform_(x, a, 2.0, 3.0);
  Stats s = stats(x);
  EXPECT_GE(s.min, 2.0);
  EXPECT_LT(s.max, 3.0);
  init::constant_(x, 0.5);
  EXPECT_FLOAT_EQ(stats(x).max, 0.5f);
  Tensor h = empty({4}, DType::bf16);
  init::ones_(h);
  EXPECT_EQ(h.to_vector<float>(), (std::vector<float>{1, 1, 1, 1}));
  init::zeros_(h);
  EXPECT_EQ(h.to_vector<float>(), (std::vector<float>{0, 0, 0, 0}));
}
