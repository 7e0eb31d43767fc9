#include "engine/ops/statistics.h"

#include <gtest/gtest.h>

#include <cmath>

#include "engine/core/error.h"
#include "tests/support/gradcheck.h"

using namespace oar;
using oar::testing::rand_input;
using In = std::vector<Tensor>;

TEST(Statistics, VarAndStdByHand) {
  Tensor x = tensor<float>({1, 2, 3, 4});
  EXPECT_NEAR(var(x).item<float>(), 5.0 / 3.0, 1e-6);
  EXPECT_NEAR(var(x, {}, 0).item<float>(), 1.25, 1e-6);
  EXPECT_NEAR(oar::std(x).item<float>(), std::sqrt(5.0 / 3.0), 1e-6);
  Tensor m = tensor<float>({1, 2, 3, 5, 5, 5}, {2, 3});
  Tensor v = var(m, {1}, 1, true);
  EXPECT_EQ(v.shape(), (Shape{2, 1}));
  EXPECT_EQ(v.to_vector<float>(), (std::vector<float>{1, 0}));
}

TEST(Statistics, VarOverSeveralDimsOfPermutedInput) {
  Tensor x = rand_input({3, 4, 5}, 11).detach().permute({2, 1, 0});  // [5, 4, 3]
  Tensor v = var(x, {0, -1}, 1);
  auto xv = x.contiguous().to_vector<float>();
  auto vv = v.to_vector<float>();
  for (int b = 0; b < 4; ++b) {
    double s = 0, ss = 0;
    for (int a = 0; a < 5; ++a)
      for (int c = 0; c < 3; ++c) s += xv[(a * 4 + b) * 3 + c];
    const double mu = s / 15;
    for (int a = 0; a < 5; ++a)
      for (int c = 0; c < 3; ++c) ss += std::pow(xv[(a * 4 + b) * 3 + c] - mu, 2);
    EXPECT_NEAR(vv[b], ss / 14, 1e-6);
  }
}

TEST(Statistics, Norms) {
  Tensor x = tensor<float>({3, -4});
  EXPECT_FLOAT_EQ(norm(x).item<float>(), 5.f);
  EXPECT_FLOAT_EQ(norm(x, 1).item<float>(), 7.f);
  EXPECT_FLOAT_EQ(norm(x, INFINITY).item<float>(), 4.f);
  EXPECT_FLOAT_EQ(norm(x, -INFINITY).item<float>(), 3.f);
  EXPECT_NEAR(norm(x, 3).item<float>(), std::cbrt(91.0), 1e-5);
  EXPECT_FLOAT_EQ(norm(tensor<float>({0, 2, 0}), 0).item<float>(), 1.f);
  Tensor m = tensor<float>({3, 4, 6, 8}, {2, 2});
  EXPECT_EQ(norm(m, 2, {-1}).to_vector<float>(), (std::vector<float>{5, 10}));
  Tensor z = zeros({3}).set_requires_grad();
  norm(z).backward();
  EXPECT_EQ(z.grad().to_vector<float>(), (std::vector<float>{0, 0, 0}));
}

TEST(Statistics, LogSumExpIsStable) {
  Tensor x = tensor<float>({1000, 1000, -1000, -1000}, {2, 2}).t();  // [[1000,-1000],[1000,-1000]]
  auto v = logsumexp(x, {0}).to_vector<float>();
  EXPECT_NEAR(v[0], 1000 + std::log(2.0), 1e-3);
  EXPECT_NEAR(v[1], -1000 + std::log(2.0), 1e-3);
  Tensor inf = tensor<float>({-INFINITY, -INFINITY});
  EXPECT_EQ(logsumexp(inf, {0}).item<float>(), -INFINITY);
  EXPECT_NEAR(logsumexp(tensor<float>({0, std::log(3.f)}), {-1}).item<float>(), std::log(4.0),
              1e-6);
}

TEST(Statistics, Gradients) {
  EXPECT_GRADCHECK(
      [](const std::vector<Tensor>& v) {
        return var(v[0].permute({1, 0, 2}), {0, -1});
      },
      In{rand_input({3, 4, 5}, 1)});
  EXPECT_GRADCHECK([](const std::vector<Tensor>& v) { return oar::std(v[0], {1}, 0, true); },
                   In{rand_input({3, 5}, 2)});
  EXPECT_GRADCHECK(
      [](const std::vector<Tensor>& v) { return norm(v[0].slice(0, 0, 5, 2), 2, {0}); },
      In{rand_input({5, 3}, 3, 0.2, 1.0)});
  EXPECT_GRADCHECK([](const std::vector<Tensor>& v) { return norm(v[0], 3, {-1}); },
                   In{rand_input({2, 7}, 4, 0.2, 1.0)});
  EXPECT_GRADCHECK([](const std::vector<Tensor>& v) { return norm(v[0], 1); },
                   In{rand_input({2, 3}, 5, 0.2, 1.0)});
  EXPECT_GRADCHECK(
      [](const std::vector<Tensor>& v) {
        return logsumexp(v[0].t(), {0, 1}, true);
      },
      In{rand_input({3, 5}, 6)});
  EXPECT_GRADCHECK([](const std::vector<Tensor>& v) { return logsumexp(v[0], {-2}); },
                   In{rand_input({2, 3, 5}, 7)});
}

TEST(Statistics, BadInputThrows) {
  EXPECT_THROW(var(tensor<int64_t>({1, 2})), Error);
  EXPECT_THROW(logsumexp(zeros({2, 3}), {2}), Error);
  EXPECT_THROW(norm(zeros({2}), NAN), Error);
  EXPECT_THROW(var(zeros({2}), {}, -1), Error);
}
