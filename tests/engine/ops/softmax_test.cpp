#include "engine/ops/softmax.h"

#include <gtest/gtest.h>

#include <cmath>

#include "engine/core/error.h"
#include "tests/support/gradcheck.h"

using namespace oar;
using oar::testing::rand_input;
using In = std::vector<Tensor>;

TEST(Softmax, ByHand) {
  Tensor x = tensor<float>({1, 2, 3});
  const double z = std::exp(1.0) + std::exp(2.0) + std::exp(3.0);
  auto s = softmax(x, 0).to_vector<float>();
  auto l = log_softmax(x, -1).to_vector<float>();
  for (int i = 0; i < 3; ++i) {
    EXPECT_NEAR(s[i], std::exp(i + 1.0) / z, 1e-6);
    EXPECT_NEAR(l[i], i + 1.0 - std::log(z), 1e-5);
  }
  // Large logits stay finite.
  auto big = log_softmax(tensor<float>({1000, 0}), 0).to_vector<float>();
  EXPECT_NEAR(big[0], 0.0, 1e-5);
  EXPECT_NEAR(big[1], -1000.0, 1e-2);
}

// Reference over dim 1 of a [A, B, C] contiguous tensor.
static std::vector<double> naive_softmax_dim1(const std::vector<float>& x, int A, int B, int C,
                                              bool log) {
  std::vector<double> out(x.size());
  for (int a = 0; a < A; ++a)
    for (int c = 0; c < C; ++c) {
      double m = -1e30, s = 0;
      for (int b = 0; b < B; ++b) m = std::max<double>(m, x[(a * B + b) * C + c]);
      for (int b = 0; b < B; ++b) s += std::exp(x[(a * B + b) * C + c] - m);
      for (int b = 0; b < B; ++b) {
        const double v = x[(a * B + b) * C + c] - m - std::log(s);
        out[(a * B + b) * C + c] = log ? v : std::exp(v);
      }
    }
  return out;
}

TEST(Softmax, MiddleDimOfPermutedInputAndHalfTypes) {
  Tensor x = rand_input({4, 3, 5}, 2, -3, 3).detach().permute({1, 2, 0});  // [3, 5, 4]
  auto xv = x.contiguous().to_vector<float>();
  for (bool log : {false, true}) {
    auto ref = naive_softmax_dim1(xv, 3, 5, 4, log);
    auto got = (log ? log_softmax(x, 1) : softmax(x, 1)).to_vector<float>();
    for (size_t i = 0; i < ref.size(); ++i) EXPECT_NEAR(got[i], ref[i], 1e-5);
    Tensor yb = log ? log_softmax(x.to(DType::bf16), -2) : softmax(x.to(DType::bf16), -2);
    EXPECT_EQ(yb.dtype(), DType::bf16);
    auto gb = yb.to(DType::f32).to_vector<float>();
    for (size_t i = 0; i < ref.size(); ++i)
      EXPECT_NEAR(gb[i], ref[i], 0.05 + 0.02 * std::fabs(ref[i]));
    auto gh = (log ? log_softmax(x.to(DType::f16), 1) : softmax(x.to(DType::f16), 1))
                  .to(DType::f32)
                  .to_vector<float>();
    for (size_t i = 0; i < ref.size(); ++i)
      EXPECT_NEAR(gh[i], ref[i], 0.01 + 0.002 * std::fabs(ref[i]));
  }
}

TEST(Softmax, Gradients) {
  EXPECT_GRADCHECK([](const std::vector<Tensor>& v) { return softmax(v[0], 1); },
                   In{rand_input({2, 3, 4}, 1)});
  EXPECT_GRADCHECK([](const std::vector<Tensor>& v) { return log_softmax(v[0].t(), -1); },
                   In{rand_input({5, 3}, 2)});
  EXPECT_GRADCHECK([](const std::vector<Tensor>& v) { return softmax(v[0].slice(0, 1, 4), 0); },
                   In{rand_input({4, 7}, 3)});
  EXPECT_GRADCHECK([](const std::vector<Tensor>& v) { return log_softmax(v[0], 0); },
                   In{rand_input({3, 2, 3}, 4)});
}

TEST(Softmax, BadInputThrows) {
  EXPECT_THROW(softmax(tensor<int64_t>({1, 2}), 0), Error);
  EXPECT_THROW(log_softmax(zeros({2, 3}), 2), Error);
  EXPECT_THROW(softmax(Tensor(), 0), Error);
}
