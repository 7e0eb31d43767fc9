// Autocast's cache of lowered parameters: a weight used many times is cast once, every use still
// sends its gradient to the f32 weight, an in-place write (an optimizer step) invalidates the
// copy, and results equal those of a fresh cast.
#include <gtest/gtest.h>

#include "engine/autograd/autocast.h"
#include "engine/autograd/grad_mode.h"
#include "engine/nn.h"
#include "engine/ops.h"
#include "engine/optim/sgd.h"

using namespace oar;

namespace {

float max_abs_diff(const Tensor& a, const Tensor& b) {
  return amax(abs(sub(a.to(DType::f32), b.to(DType::f32)))).item<float>();
}

}  // namespace

TEST(AutocastCache, CastsAParameterOncePerVersion) {
  autocast_clear_cache();
  Generator gen(1);
  Tensor w = randn({8, 4}, &gen);
  w.set_requires_grad();
  const Tensor x = randn({3, 4}, &gen);
  AutocastGuard ac(true, DType::bf16);
  const int64_t hits0 = autocast_cache_hits();
  Tensor y1 = linear(x, w);
  EXPECT_EQ(autocast_cache_size(), 1);  // only the parameter is cached, not the input
  Tensor y2 = linear(x, w);
  EXPECT_EQ(autocast_cache_hits() - hits0, 1);
  EXPECT_EQ(y1.dtype(), DType::bf16);
  EXPECT_EQ(max_abs_diff(y1, y2), 0.0f);
  // The cached copy equals a fresh cast of the weight.
  Tensor fresh = matmul(x.to(DType::bf16), w.detach().to(DType::bf16).t());
  EXPECT_EQ(max_abs_diff(y1, fresh), 0.0f);
}

TEST(AutocastCache, EveryUseSendsItsGradientToTheWeight) {
  autocast_clear_cache();
  Generator gen(2);
  Tensor w = randn({5, 6}, &gen);
  w.set_requires_grad();
  const Tensor x = randn({4, 6}, &gen);
  {
    AutocastGuard ac(true, DType::bf16);
    // Two uses of the same (cached) lowered weight in one graph: both gradients add up.
    Tensor loss = add(sum(linear(x, w).to(DType::f32)), sum(linear(x, w).to(DType::f32)));
    loss.backward();
  }
  ASSERT_TRUE(w.grad().defined());
  EXPECT_EQ(w.grad().dtype(), DType::f32);
  // d/dw of 2 * sum(x w^T) is 2 * column sums of x, for every row of w.
  const Tensor expect = mul(sum(x, {0}, true).expand({5, 6}), 2.0);
  EXPECT_LT(max_abs_diff(w.grad(), expect), 0.1f);  // bf16 operands
}

TEST(AutocastCache, AnOptimizerStepInvalidatesTheCopy) {
  autocast_clear_cache();
  Generator gen(3);
  Tensor w = randn({3, 3}, &gen);
  w.set_requires_grad();
  const Tensor x = tensor<float>({1, 0, 0, 0, 1, 0, 0, 0, 1}, {3, 3});
  optim::SGD opt(std::vector<Tensor>{w}, optim::SgdOptions{0.5, 0, 0, 0});
  Tensor before;
  {
    AutocastGuard ac(true, DType::bf16);
    before = linear(x, w);  // = w^T in bf16
    sum(before.to(DType::f32)).backward();
  }
  opt.step();  // w -= 0.5: every entry changes
  AutocastGuard ac(true, DType::bf16);
  const int64_t hits0 = autocast_cache_hits();
  Tensor after = linear(x, w);
  EXPECT_EQ(autocast_cache_hits(), hits0);  // a miss: the version moved
  EXPECT_EQ(max_abs_diff(after, w.detach().t()),
            max_abs_diff(w.detach().to(DType::bf16), w.detach()));
  EXPECT_GT(max_abs_diff(after, before), 0.4f);
  // Without grad mode the cached copy is shared, and a raw copy_ also invalidates it.
  NoGradGuard ng;
  w.copy_(zeros({3, 3}));
  EXPECT_EQ(amax(abs(linear(x, w).to(DType::f32))).item<float>(), 0.0f);
}

TEST(AutocastCache, DoesNotKeepFreedWeights) {
  autocast_clear_cache();
  Generator gen(4);
  const Tensor x = randn({2, 4}, &gen);
  AutocastGuard ac(true, DType::bf16);
  for (int i = 0; i < 5; ++i) {
    Tensor w = randn({4, 4}, &gen);
    w.set_requires_grad();
    NoGradGuard ng;
    linear(x, w);
  }
  EXPECT_LE(autocast_cache_size(), 1);  // each new cast drops the entries of dead weights
}
