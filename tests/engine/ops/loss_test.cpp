#include "engine/ops/loss.h"

#include <gtest/gtest.h>

#include <cmath>

#include "engine/core/error.h"
#include "engine/ops/softmax.h"
#include "tests/support/gradcheck.h"

using namespace oar;
using oar::testing::rand_input;
using In = std::vector<Tensor>;

// PyTorch's cross_entropy on [N, C] logits, written out: (1 - eps) * nll + eps / C * smooth,
// where the NLL mean divides by the weight of non-ignored targets and the unweighted smoothing
// mean by N (ignored rows included).
static double naive_ce(const std::vector<float>& x, const std::vector<int64_t>& t, int N, int C,
                       int64_t ignore, double eps, const std::string& red,
                       const std::vector<float>& w) {
  double nll = 0, smooth = 0, wsum = 0;
  for (int n = 0; n < N; ++n) {
    if (t[n] == ignore) continue;
    double m = -1e30, s = 0;
    for (int c = 0; c < C; ++c) m = std::max<double>(m, x[n * C + c]);
    for (int c = 0; c < C; ++c) s += std::exp(x[n * C + c] - m);
    const double lse = m + std::log(s);
    const double wt = w.empty() ? 1.0 : w[t[n]];
    nll += wt * (lse - x[n * C + t[n]]);
    wsum += wt;
    for (int c = 0; c < C; ++c) smooth += (w.empty() ? 1.0 : w[c]) * (lse - x[n * C + c]);
  }
  if (red == "sum") return (1 - eps) * nll + eps / C * smooth;
  const double smooth_div = w.empty() ? N : wsum;
  return (1 - eps) * nll / wsum + eps / C * smooth / smooth_div;
}

TEST(Loss, CrossEntropyByHand) {
  Tensor x = zeros({1, 2});
  EXPECT_NEAR(cross_entropy(x, tensor<int64_t>({0})).item<float>(), std::log(2.0), 1e-6);
  Tensor y = tensor<float>({0, 1000}, {1, 2});
  EXPECT_NEAR(cross_entropy(y, tensor<int64_t>({0})).item<float>(), 1000.0, 1e-3);
}

TEST(Loss, CrossEntropyMatchesPyTorchFormula) {
  const int N = 5, C = 4;
  Tensor x = rand_input({N, C}, 3, -2, 2).detach();
  auto xv = x.to_vector<float>();
  const std::vector<int64_t> t = {1, -100, 3, 0, 3};
  const std::vector<float> w = {0.5f, 2.0f, 1.0f, 0.25f};
  for (double eps : {0.0, 0.2})
    for (const std::string red : {"mean", "sum"})
      for (bool weighted : {false, true}) {
        const double ref =
            naive_ce(xv, t, N, C, -100, eps, red, weighted ? w : std::vector<float>{});
        const double got = cross_entropy(x, tensor<int64_t>(t, {N}), -100, eps, red,
                                         weighted ? tensor<float>(w, {C}) : Tensor())
                               .item<double>();
        EXPECT_NEAR(got, ref, 1e-5) << "eps " << eps << " " << red << " weighted " << weighted;
      }
  Tensor none = cross_entropy(x, tensor<int64_t>(t, {N}), -100, 0.1, "none");
  EXPECT_EQ(none.shape(), (Shape{N}));
  auto nv = none.to_vector<float>();
  EXPECT_EQ(nv[1], 0.f);
  double total = 0;
  for (float v : nv) total += v;
  EXPECT_NEAR(total, naive_ce(xv, t, N, C, -100, 0.1, "sum", {}), 1e-5);
}

TEST(Loss, CrossEntropySpatialLayoutEqualsFlattened) {
  // [N, C, d1, d2] equals the [N*d1*d2, C] problem with classes moved last.
  Tensor x = rand_input({2, 3, 2, 3}, 5).detach();
  Tensor t = tensor<int64_t>({0, 1, 2, 2, 1, 0, 1, 1, 7, 0, 2, 1}, {2, 2, 3});
  Tensor flat = x.permute({0, 2, 3, 1}).reshape({12, 3});
  Tensor w = tensor<float>({1, 2, 3});
  const double a = cross_entropy(x, t, 7, 0.1, "mean", w).item<double>();
  const double b = cross_entropy(flat, t.reshape({12}), 7, 0.1, "mean", w).item<double>();
  EXPECT_NEAR(a, b, 1e-6);
  EXPECT_EQ(cross_entropy(x, t, 7, 0.0, "none").shape(), (Shape{2, 2, 3}));
  // nll_loss of log_softmax is the same loss.
  const double c = nll_loss(log_softmax(x, 1), t, 7, "mean", w).item<double>();
  EXPECT_NEAR(cross_entropy(x, t, 7, 0.0, "mean", w).item<double>(), c, 1e-6);
}

TEST(Loss, CrossEntropyGradients) {
  Tensor t = tensor<int64_t>({2, 0, -100, 1, 2});
  Tensor w = tensor<float>({0.5f, 2.0f, 1.5f});
  EXPECT_GRADCHECK([&](const In& v) { return cross_entropy(v[0], t, -100, 0.2, "mean", w); },
                   In{rand_input({5, 3}, 1)});
  EXPECT_GRADCHECK([&](const In& v) { return cross_entropy(v[0].t(), t, -100, 0.1, "mean"); },
                   In{rand_input({3, 5}, 2)});
  Tensor ts = tensor<int64_t>({0, 1, 2, 1, 4, 0, 2, 2}, {2, 2, 2});
  EXPECT_GRADCHECK([&](const In& v) { return cross_entropy(v[0], ts, 4, 0.3, "none", w); },
                   In{rand_input({2, 3, 2, 2}, 3)});
  EXPECT_GRADCHECK([&](const In& v) { return cross_entropy(v[0], ts, 4, 0.0, "sum"); },
                   In{rand_input({2, 3, 2, 2}, 4)});
  EXPECT_GRADCHECK([&](const In& v) { return nll_loss(v[0], ts, 4, "mean", w); },
                   In{rand_input({2, 3, 2, 2}, 5)});
  EXPECT_GRADCHECK([&](const In& v) { return nll_loss(v[0].t(), t, -100, "none"); },
                   In{rand_input({3, 5}, 6)});
}

TEST(Loss, ClassTargetErrors) {
  try {
    cross_entropy(zeros({2, 3}), tensor<int64_t>({1, 3}));
    FAIL() << "no throw";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("target 3"), std::string::npos) << e.what();
  }
  EXPECT_THROW(cross_entropy(zeros({2, 3}), tensor<int64_t>({-1, 0})), Error);
  EXPECT_THROW(cross_entropy(zeros({2, 3}), tensor<int64_t>({0, 0, 0})), Error);
  EXPECT_THROW(cross_entropy(zeros({2, 3}), tensor<int64_t>({0, 0}), -100, 0, "avg"), Error);
  EXPECT_THROW(cross_entropy(zeros({2, 3}), tensor<int64_t>({0, 0}), -100, 0, "mean", ones({2})),
               Error);
  EXPECT_THROW(nll_loss(zeros({2, 3}), tensor<float>({0, 0})), Error);
}

TEST(Loss, SoftCrossEntropy) {
  Tensor x = rand_input({4, 3}, 7).detach();
  Tensor t = tensor<int64_t>({0, 2, 1, 1});
  Tensor onehot = tensor<float>({1, 0, 0, 0, 0, 1, 0, 1, 0, 0, 1, 0}, {4, 3});
  EXPECT_NEAR(cross_entropy_soft(x, onehot).item<double>(), cross_entropy(x, t).item<double>(),
              1e-5);
  EXPECT_GRADCHECK(
      [](const In& v) {
        return cross_entropy_soft(v[0], v[1].permute({0, 2, 1}), "sum");
      },
      (In{rand_input({2, 3, 4}, 8), rand_input({2, 4, 3}, 9, 0, 1)}));
  EXPECT_THROW(cross_entropy_soft(zeros({2, 3}), zeros({2, 2})), Error);
}

TEST(Loss, BinaryCrossEntropyWithLogits) {
  EXPECT_NEAR(binary_cross_entropy_with_logits(zeros({1}), ones({1})).item<double>(), std::log(2.0),
              1e-6);
  // Stable at large logits: no inf or nan.
  Tensor big = tensor<float>({100, -100});
  auto v = binary_cross_entropy_with_logits(big, tensor<float>({0, 1}), "none").to_vector<float>();
  EXPECT_NEAR(v[0], 100.0, 1e-3);
  EXPECT_NEAR(v[1], 100.0, 1e-3);
  EXPECT_NEAR(binary_cross_entropy_with_logits(zeros({2}), ones({2}), "sum", tensor<float>({3}))
                  .item<double>(),
              6 * std::log(2.0), 1e-5);
  // Reference: -pw*t*log(sigmoid(x)) - (1-t)*log(1-sigmoid(x)).
  const float x = 0.7f, t = 0.3f, pw = 2.0f;
  const double s = 1 / (1 + std::exp(-x));
  EXPECT_NEAR(binary_cross_entropy_with_logits(tensor<float>({x}), tensor<float>({t}), "mean",
                                               tensor<float>({pw}))
                  .item<double>(),
              -pw * t * std::log(s) - (1 - t) * std::log(1 - s), 1e-6);
  EXPECT_GRADCHECK(
      [](const In& v) { return binary_cross_entropy_with_logits(v[0].t(), v[1], "mean", v[2]); },
      (In{rand_input({3, 4}, 1, -3, 3), rand_input({4, 3}, 2, 0, 1), rand_input({3}, 3, 0.5, 2)}));
  EXPECT_THROW(binary_cross_entropy_with_logits(zeros({2}), zeros({3})), Error);
}

TEST(Loss, MseAndSmoothL1) {
  Tensor a = tensor<float>({1, 2});
  EXPECT_FLOAT_EQ(mse_loss(a, zeros({2})).item<float>(), 2.5f);
  EXPECT_FLOAT_EQ(mse_loss(a, zeros({2}), "sum").item<float>(), 5.f);
  Tensor d = tensor<float>({0.5f, 2.f, -3.f});
  EXPECT_EQ(smooth_l1_loss(d, zeros({3}), 1.0, "none").to_vector<float>(),
            (std::vector<float>{0.125f, 1.5f, 2.5f}));
  EXPECT_FLOAT_EQ(smooth_l1_loss(d, zeros({3}), 0.0, "sum").item<float>(), 5.5f);
  EXPECT_FLOAT_EQ(smooth_l1_loss(d, zeros({3}), 2.0).item<float>(), (0.0625f + 1.f + 2.f) / 3);
  EXPECT_GRADCHECK([](const In& v) { return mse_loss(v[0].t(), v[1]); },
                   (In{rand_input({3, 2}, 1), rand_input({2, 3}, 2)}));
  // Values away from the kinks at |d| = beta.
  Tensor x = tensor<float>({0.1f, 2.f, -3.f, -0.4f, 1.5f, 0.3f}, {2, 3}).set_requires_grad();
  Tensor y = tensor<float>({0.3f, 0.2f, 0.1f, 0.2f, -0.5f, 0.2f}, {2, 3}).set_requires_grad();
  EXPECT_GRADCHECK([](const In& v) { return smooth_l1_loss(v[0], v[1], 1.0, "none"); }, (In{x, y}));
  EXPECT_THROW(mse_loss(zeros({2}), zeros({3})), Error);
  EXPECT_THROW(smooth_l1_loss(zeros({2}), zeros({2}), -1.0), Error);
}
