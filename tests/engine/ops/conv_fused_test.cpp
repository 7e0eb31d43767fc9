// conv_fused (convolution with the residual add and ReLU/ReLU6 as oneDNN post-ops) against the
// same unfused ops: forward and every gradient, over layouts oneDNN reorders (3x3, 1x1, strided),
// the depthwise loops, with and without bias and residual; plus finite differences, the unfused
// fallback when the residual's dtype differs, and the shape check. Also the CPU backward that
// reorders dy once for both backward primitives, against the separate passes.
#include <gtest/gtest.h>

#include <cmath>
#include <tuple>

#include "engine/core/error.h"
#include "engine/ops.h"
#include "engine/ops/conv_fused.h"
#include "tests/support/gradcheck.h"

using namespace oar;
using oar::testing::rand_input;
using V = std::vector<Tensor>;

namespace {

void expect_close(const Tensor& got, const Tensor& want, double tol, const char* what) {
  ASSERT_TRUE(got.defined() && want.defined()) << what;
  ASSERT_EQ(got.shape(), want.shape()) << what;
  auto g = got.to(DType::f32).contiguous().to_vector<float>();
  auto w = want.to(DType::f32).contiguous().to_vector<float>();
  for (size_t i = 0; i < g.size(); ++i)
    ASSERT_NEAR(g[i], w[i], tol * (1 + std::fabs(w[i]))) << what << " element " << i;
}

Tensor unfused(const Tensor& x, const Tensor& w, const Tensor& b, const ConvParams& p,
               const Tensor& r, ConvActivation act) {
  Tensor h = conv(x, w, b, p);
  if (r.defined()) h = h + r;
  if (act == ConvActivation::relu) return relu(h);
  if (act == ConvActivation::relu6) return relu6(h);
  return h;
}

struct Case {
  Shape x, w;
  ConvParams p;
};

}  // namespace

TEST(ConvFused, ForwardAndBackwardMatchUnfused) {
  const Case cases[] = {
      {{2, 16, 9, 9}, {32, 16, 3, 3}, {{1, 1}, {1, 1}, {1, 1}, 1}},  // oneDNN, reordered
      {{2, 32, 7, 7}, {16, 32, 1, 1}, {{1, 1}, {0, 0}, {1, 1}, 1}},  // 1x1
      {{1, 8, 10, 10}, {24, 8, 3, 3}, {{2, 2}, {1, 1}, {1, 1}, 1}},  // strided
      {{2, 12, 8, 8}, {12, 1, 3, 3}, {{1, 1}, {1, 1}, {1, 1}, 12}},  // depthwise loops
      {{1, 3, 11, 11}, {8, 3, 5, 5}, {{1, 1}, {2, 2}, {1, 1}, 1}},   // few input channels
  };
  uint64_t seed = 1;
  // (bias, residual, activation): each post-op alone and together (oneDNN primitives are
  // created per combination, so not the whole product: that takes tens of seconds here).
  const std::tuple<bool, bool, ConvActivation> combos[] = {
      {false, true, ConvActivation::relu},
      {true, false, ConvActivation::relu6},
      {true, true, ConvActivation::none},
  };
  for (const Case& c : cases)
    for (const auto& [with_bias, with_res, act] : combos) {
      SCOPED_TRACE(::testing::Message()
                   << "x " << shape_str(c.x) << " w " << shape_str(c.w) << " bias " << with_bias
                   << " res " << with_res << " act " << static_cast<int>(act));
      // Scaled so relu6 clips some values above 6 as well as below 0.
      const Tensor x = (rand_input(c.x, seed++) * 3.0).detach().set_requires_grad();
      const Tensor w = rand_input(c.w, seed++).detach().set_requires_grad();
      const Tensor b =
          with_bias ? rand_input({c.w[0]}, seed++).detach().set_requires_grad() : Tensor();
      const Shape out_shape = conv(x.detach(), w.detach(), Tensor(), c.p).shape();
      const Tensor r =
          with_res ? (rand_input(out_shape, seed++) * 3.0).detach().set_requires_grad() : Tensor();
      const Tensor probe = rand_input(out_shape, seed++).detach();
      auto grads = [&](const Tensor& y) {
        sum(y * probe).backward();
        V g{x.grad(), w.grad(), b.defined() ? b.grad() : Tensor(),
            r.defined() ? r.grad() : Tensor()};
        for (const Tensor& t : {x, w, b, r})
          if (t.defined()) Tensor(t).set_grad(Tensor());
        return g;
      };
      const Tensor want = unfused(x, w, b, c.p, r, act);
      const V want_g = grads(want);
      const Tensor got = conv_fused(x, w, b, c.p, r, act);
      const V got_g = grads(got);
      expect_close(got, want, 1e-5, "forward");
      const char* names[] = {"dx", "dw", "db", "dresidual"};
      for (size_t i = 0; i < 4; ++i)
        if (want_g[i].defined()) expect_close(got_g[i], want_g[i], 1e-4, names[i]);
    }
}

TEST(ConvFused, FiniteDifferences) {
  const ConvParams p{{1, 1}, {1, 1}, {1, 1}, 1};
  const Tensor x = rand_input({1, 3, 5, 5}, 11), w = rand_input({4, 3, 3, 3}, 12);
  const Tensor b = rand_input({4}, 13), r = rand_input({1, 4, 5, 5}, 14);
  EXPECT_GRADCHECK(
      [p](const V& v) { return conv_fused(v[0], v[1], v[2], p, v[3], ConvActivation::relu); },
      (V{x, w, b, r}));
  EXPECT_GRADCHECK(
      [p](const V& v) { return conv_fused(v[0], v[1], Tensor(), p, v[2], ConvActivation::none); },
      (V{x, w, r}));
}

TEST(ConvFused, InPlaceWeightUpdateIsSeen) {
  const ConvParams p{{1, 1}, {1, 1}, {1, 1}, 1};
  const Tensor x = rand_input({1, 16, 6, 6}, 21).detach();
  Tensor w = rand_input({16, 16, 3, 3}, 22).detach();
  const Tensor r = rand_input({1, 16, 6, 6}, 23).detach();
  conv_fused(x, w, Tensor(), p, r, ConvActivation::relu);
  w.fill_(0.5);  // bumps the storage version: the cached reordered weight must be redone
  expect_close(conv_fused(x, w, Tensor(), p, r, ConvActivation::relu),
               unfused(x, w, Tensor(), p, r, ConvActivation::relu), 1e-5, "after update");
}

TEST(ConvFused, ResidualOfAnotherDtypeFallsBackToUnfusedOps) {
  const ConvParams p{{1, 1}, {0, 0}, {1, 1}, 1};
  const Tensor x = rand_input({1, 8, 4, 4}, 31).detach().to(DType::bf16);
  const Tensor w = rand_input({8, 8, 1, 1}, 32).detach().to(DType::bf16);
  const Tensor r = rand_input({1, 8, 4, 4}, 33).detach();  // f32
  const Tensor got = conv_fused(x, w, Tensor(), p, r, ConvActivation::relu);
  EXPECT_EQ(got.dtype(), DType::f32);  // as bf16 conv + f32 residual promotes
  expect_close(got, unfused(x, w, Tensor(), p, r, ConvActivation::relu), 1e-6, "fallback");
}

TEST(ConvFused, Bf16WithinTolerance) {
  const ConvParams p{{1, 1}, {1, 1}, {1, 1}, 1};
  const Tensor x = rand_input({2, 16, 6, 6}, 41).detach().to(DType::bf16);
  const Tensor w = rand_input({16, 16, 3, 3}, 42).detach().to(DType::bf16);
  const Tensor r = rand_input({2, 16, 6, 6}, 43).detach().to(DType::bf16);
  try {
    const Tensor got = conv_fused(x, w, Tensor(), p, r, ConvActivation::relu);
    EXPECT_EQ(got.dtype(), DType::bf16);
    expect_close(got, unfused(x, w, Tensor(), p, r, ConvActivation::relu), 3e-2, "bf16");
  } catch (const Error& e) {  // a CPU without bf16 convolutions says so in the message
    EXPECT_NE(std::string(e.what()).find("oneDNN has no"), std::string::npos) << e.what();
  }
}

TEST(ConvFused, ResidualShapeMustMatchOutput) {
  const ConvParams p{{1, 1}, {0, 0}, {1, 1}, 1};
  const Tensor x = rand_input({1, 4, 5, 5}, 51), w = rand_input({6, 4, 1, 1}, 52);
  try {
    conv_fused(x, w, Tensor(), p, rand_input({1, 4, 5, 5}, 53), ConvActivation::relu);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("residual [1, 4, 5, 5]"), std::string::npos) << e.what();
  }
}

// With both dx and dw wanted, the CPU backward reorders dy once for the two oneDNN primitives;
// the gradients equal those of the separate backward-data and backward-weights paths.
TEST(ConvBackward, SharedGradOutMatchesSeparatePasses) {
  const ConvParams p{{1, 1}, {1, 1}, {1, 1}, 1};
  const Tensor x0 = rand_input({2, 16, 7, 7}, 61).detach(), w0 = rand_input({32, 16, 3, 3}, 62);
  const Tensor b0 = rand_input({32}, 63).detach(), probe = rand_input({2, 32, 7, 7}, 64).detach();
  auto run = [&](bool gx, bool gw) {
    Tensor x = x0.detach(), w = w0.detach(), b = b0.detach();
    if (gx) x.set_requires_grad();
    if (gw) w.set_requires_grad(), b.set_requires_grad();
    sum(conv(x, w, b, p) * probe).backward();
    return V{x.grad(), w.grad(), b.grad()};
  };
  const V both = run(true, true), only_x = run(true, false), only_w = run(false, true);
  expect_close(both[0], only_x[0], 1e-5, "dx");
  expect_close(both[1], only_w[1], 1e-5, "dw");
  expect_close(both[2], only_w[2], 1e-5, "db");
}
