// Gradient accumulation in the autograd engine: where gradients of one tensor meet, the sum is
// added in place only into a buffer nothing else sees; a caller's gradient, a gradient shared
// between two inputs and a leaf's .grad are never overwritten.
#include <gtest/gtest.h>

#include "engine/autograd/node.h"
#include "engine/ops.h"
#include "tests/support/gradcheck.h"

using namespace oar;
using oar::testing::rand_input;

TEST(Accumulate, ATensorUsedThriceGetsTheSumOfItsGradients) {
  auto f = [](const std::vector<Tensor>& t) {
    const Tensor h = mul(t[0], 2.0);  // a non-leaf with three consumers
    return add(add(mul(h, t[1]), exp(h)), h);
  };
  EXPECT_GRADCHECK(f, (std::vector<Tensor>{rand_input({4, 5}, 1), rand_input({4, 5}, 2)}));
  Tensor x = rand_input({3, 4}, 3), w = rand_input({3, 4}, 4).detach();
  const Tensor h = mul(x, 2.0);
  sum(add(add(mul(h, w), h), mul(h, 3.0))).backward();  // dL/dh = w + 4
  const auto gx = x.grad().to_vector<float>(), wv = w.to_vector<float>();
  for (size_t i = 0; i < gx.size(); ++i) EXPECT_NEAR(gx[i], 2.0f * (wv[i] + 4.0f), 1e-5f);
}

TEST(Accumulate, SharedAndCallerGradientsAreNotOverwritten) {
  // add's backward hands one gradient to both of its inputs: both uses of h see it.
  Tensor x = rand_input({2, 3}, 5);
  const Tensor h = mul(x, 1.0);
  sum(add(h, h)).backward();
  for (float g : x.grad().to_vector<float>()) EXPECT_FLOAT_EQ(g, 2.0f);
  // The same root twice with the caller's gradients: they are summed, the caller's kept.
  Tensor y = rand_input({2, 3}, 6);
  const Tensor z = mul(y, 3.0);
  const Tensor g1 = rand_input({2, 3}, 7).detach(), g2 = rand_input({2, 3}, 8).detach();
  const auto g1v = g1.to_vector<float>(), g2v = g2.to_vector<float>();
  autograd::backward({z, z}, {g1, g2});
  EXPECT_EQ(g1.to_vector<float>(), g1v);
  EXPECT_EQ(g2.to_vector<float>(), g2v);
  const auto gy = y.grad().to_vector<float>();
  for (size_t i = 0; i < gy.size(); ++i) EXPECT_NEAR(gy[i], 3.0f * (g1v[i] + g2v[i]), 1e-5f);
}

TEST(Accumulate, LeafGradAddsAcrossBackwardsUntilReset) {
  Tensor x = rand_input({5}, 9), w = rand_input({5}, 10).detach();
  auto run = [&] {
    const Tensor h = mul(x, 2.0);
    sum(add(mul(h, w), h)).backward();
  };
  run();
  const auto once = x.grad().to_vector<float>();
  const Tensor first = x.grad();
  run();
  const auto twice = x.grad().to_vector<float>();
  for (size_t i = 0; i < once.size(); ++i) EXPECT_NEAR(twice[i], 2.0f * once[i], 1e-5f);
  x.set_grad(Tensor());  // set_to_none: the next backward starts afresh
  run();
  EXPECT_EQ(x.grad().to_vector<float>(), once);
  EXPECT_EQ(first.to_vector<float>(), twice);  // the old .grad is not written again
}
