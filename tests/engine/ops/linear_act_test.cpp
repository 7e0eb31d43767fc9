// linear_act: act(linear(x, w, b)) with the activation fused into the GEMM when no gradient is
// needed, and the training path (act(h) and act'(h) in one pass, the bias gradient summed with
// the activation's backward) when gradients are needed; equal to the unfused ops.
#include <gtest/gtest.h>

#include "engine/autograd/autocast.h"
#include "engine/autograd/grad_mode.h"
#include "engine/core/error.h"
#include "engine/ops.h"
#include "tests/support/gradcheck.h"

using namespace oar;
using oar::testing::rand_input;

namespace {

float max_abs_diff(const Tensor& a, const Tensor& b) {
  return amax(abs(sub(a.to(DType::f32), b.to(DType::f32)))).item<float>();
}

Tensor unfused(const Tensor& x, const Tensor& w, const Tensor& b, LinearActivation act) {
  const Tensor y = linear(x, w, b);
  return act == LinearActivation::gelu        ? gelu(y, false)
         : act == LinearActivation::gelu_tanh ? gelu(y, true)
         : act == LinearActivation::relu      ? relu(y)
                                              : y;
}

}  // namespace

TEST(LinearAct, FusedEqualsUnfused) {
  const Tensor x = rand_input({2, 7, 16}, 1, -3, 3), w = rand_input({24, 16}, 2),
               b = rand_input({24}, 3);
  for (LinearActivation act : {LinearActivation::none, LinearActivation::gelu,
                               LinearActivation::gelu_tanh, LinearActivation::relu}) {
    NoGradGuard ng;
    const Tensor fused = linear_act(x, w, b, act);
    ASSERT_EQ(fused.shape(), (Shape{2, 7, 24}));
    EXPECT_LT(max_abs_diff(fused, unfused(x, w, b, act)), 2e-6f) << static_cast<int>(act);
    // Without a bias, and with bf16 autocast (the post-op runs on the f32 accumulator).
    EXPECT_LT(max_abs_diff(linear_act(x, w, Tensor(), act), unfused(x, w, Tensor(), act)), 2e-6f);
    AutocastGuard ac(true, DType::bf16);
    const Tensor lowered = linear_act(x, w, b, act);
    EXPECT_EQ(lowered.dtype(), DType::bf16);
    EXPECT_LT(max_abs_diff(lowered, unfused(x, w, b, act)), 0.1f);
  }
}

TEST(LinearAct, GradientsAreThoseOfTheUnfusedOps) {
  std::vector<Tensor> in{rand_input({3, 5}, 4, -2, 2), rand_input({4, 5}, 5), rand_input({4}, 6)};
  auto f = [](const std::vector<Tensor>& t) {
    return linear_act(t[0], t[1], t[2], LinearActivation::gelu);
  };
  EXPECT_GRADCHECK(f, in);
  auto g = [](const std::vector<Tensor>& t) {
    return linear_act(t[0], t[1], t[2], LinearActivation::gelu_tanh);
  };
  EXPECT_GRADCHECK(g, in);
  // With gradients the result is the unfused one exactly (the same GEMM and activation code).
  EXPECT_EQ(linear_act(in[0], in[1], in[2], LinearActivation::gelu).to_vector<float>(),
            unfused(in[0], in[1], in[2], LinearActivation::gelu).to_vector<float>());
}

// The training path against linear -> activation: values and the gradients of x, weight and bias
// (with and without a bias, a 3-D input, rows enough for threads), and through a second use.
TEST(LinearAct, TrainingPathMatchesUnfusedGradients) {
  for (LinearActivation act :
       {LinearActivation::gelu, LinearActivation::gelu_tanh, LinearActivation::relu}) {
    for (bool with_bias : {true, false}) {
      SCOPED_TRACE(std::to_string(static_cast<int>(act)) + (with_bias ? " bias" : " no bias"));
      std::vector<Tensor> a{rand_input({6, 70, 33}, 7, -3, 3), rand_input({40, 33}, 8),
                            with_bias ? rand_input({40}, 9) : Tensor()};
      std::vector<Tensor> c;
      for (Tensor& t : a) {
        if (!t.defined()) {
          c.push_back(Tensor());
          continue;
        }
        t = t.detach().set_requires_grad();
        c.push_back(t.detach().set_requires_grad());
      }
      const Tensor w = rand_input({6, 70, 40}, 10).detach();
      const Tensor ya = linear_act(a[0], a[1], a[2], act), yc = unfused(c[0], c[1], c[2], act);
      EXPECT_LT(max_abs_diff(ya, yc), 1e-6f);
      sum(mul(mul(ya, w), ya)).backward();  // the output used twice
      sum(mul(mul(yc, w), yc)).backward();
      for (size_t i = 0; i < 3; ++i) {
        if (!a[i].defined()) continue;
        SCOPED_TRACE(i);
        EXPECT_LT(max_abs_diff(a[i].grad(), c[i].grad()), 2e-4f);
      }
    }
  }
  std::vector<Tensor> in{rand_input({3, 5}, 4, -2, 2), rand_input({4, 5}, 5), rand_input({4}, 6)};
  EXPECT_GRADCHECK(
      [](const std::vector<Tensor>& t) {
        return linear_act(t[0], t[1], t[2], LinearActivation::relu);
      },
      in);
}

TEST(LinearAct, RejectsBadShapes) {
  NoGradGuard ng;
  EXPECT_THROW(
      linear_act(rand_input({3, 5}, 1), rand_input({4, 6}, 2), Tensor(), LinearActivation::gelu),
      Error);
  EXPECT_THROW(linear_act(rand_input({3, 5}, 1), rand_input({4, 5}, 2), rand_input({3}, 3),
                          LinearActivation::relu),
               Error);
}

// The training backward may overwrite the incoming gradient in place, but only when nothing else
// holds it: a caller's gradient stays as it was, and .grad accumulates across backward calls.
TEST(LinearAct, TrainingBackwardKeepsTheCallersGradient) {
  Tensor x = rand_input({4, 9, 12}, 11, -2, 2), w = rand_input({20, 12}, 12),
         b = rand_input({20}, 13);
  Tensor xc = x.detach().set_requires_grad(), wc = w.detach().set_requires_grad(),
         bc = b.detach().set_requires_grad();
  const Tensor gy = rand_input({4, 9, 20}, 14).detach();
  const auto gy_before = gy.to_vector<float>();
  for (int rep = 1; rep <= 2; ++rep) {
    SCOPED_TRACE(rep);
    linear_act(x, w, b, LinearActivation::gelu).backward(gy);
    EXPECT_EQ(gy.to_vector<float>(), gy_before);
    unfused(xc, wc, bc, LinearActivation::gelu).backward(gy);
    EXPECT_LT(max_abs_diff(x.grad(), xc.grad()), 1e-5f);
    EXPECT_LT(max_abs_diff(w.grad(), wc.grad()), 1e-5f);
    EXPECT_LT(max_abs_diff(b.grad(), bc.grad()), 1e-5f);
  }
}
