// conv_fused (convolution with the residual add and ReLU/ReLU6 as oneDNN post-ops) against the
// same unfused ops: forward and every gradient, over layouts oneDNN reorders (3x3, 1x1, strided),
// the depthwise loops, with and without bias and residual; plus finite differences, the unfused
// fallback when the residual's dtype differs, and the shape check. Also the CPU backward that
// reorders dy once for both backward primitives, against the separate passes. And channels-last
// inputs (conv_layout.h): the layout helpers, and outputs and gradients against the plain path.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <tuple>
#include <vector>

#include "engine/autograd/grad_mode.h"
#include "engine/autograd/node.h"
#include "engine/core/error.h"
#include "engine/ops.h"
#include "engine/ops/conv_fused.h"
#include "engine/ops/conv_layout.h"
#include "engine/ops/cpu/bn_blocked.h"
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

// conv_bn_train (training conv -> BN [-> + residual] [-> act] as one node, the BN pass on
// oneDNN's blocked layout) against the same ops one by one: output, running statistics and
// every gradient, over 3x3, 1x1, strided, a channel count that pads the last block, three input
// channels and the depthwise fallback; with and without gamma/beta, residual and activations.
namespace {

struct BnCase {
  Shape x, w;
  ConvParams p;
  bool affine, residual;
  ConvActivation act;
  int fused;  // 1: expected to run as one conv_bn_train node; -1: depends on oneDNN's layout
};

Tensor unfused_conv_bn(const Tensor& x, const Tensor& w, const ConvParams& p,
                       const BatchNormArgs& bn, const Tensor& r, ConvActivation act) {
  Tensor h = batch_norm(conv(x, w, Tensor(), p), bn.running_mean, bn.running_var, bn.weight,
                        bn.bias, true, bn.momentum, bn.eps);
  if (r.defined()) h = h + r;
  if (act == ConvActivation::relu) return relu(h);
  if (act == ConvActivation::relu6) return relu6(h);
  return h;
}

}  // namespace

TEST(ConvBnTrain, MatchesUnfusedOps) {
  const BnCase cases[] = {
      {{4, 16, 9, 9},
       {32, 16, 3, 3},
       {{1, 1}, {1, 1}, {1, 1}, 1},
       true,
       false,
       ConvActivation::relu,
       true},
      {{3, 32, 7, 7},
       {48, 32, 1, 1},
       {{1, 1}, {0, 0}, {1, 1}, 1},
       true,
       true,
       ConvActivation::relu,
       true},
      {{2, 8, 10, 10},
       {24, 8, 3, 3},
       {{2, 2}, {1, 1}, {1, 1}, 1},
       false,
       true,
       ConvActivation::none,
       true},  // 24 channels: the last block is padded
      // Stride 2 on a small map, 3x3 and 1x1 (ResNet's downsampling convs): the backward-data
      // kernel is picked to read dL/dy in the forward's output layout. These and the next two
      // have outputs of at most 4 positions: dL/dw comes from im2col + sgemm, read from the
      // blocked input (plain for three input channels) and the blocked dL/dy.
      {{3, 16, 2, 2},
       {32, 16, 3, 3},
       {{1, 1}, {1, 1}, {1, 1}, 1},
       true,
       true,
       ConvActivation::relu,
       true},
      {{2, 3, 5, 4},
       {16, 3, 3, 3},
       {{2, 2}, {1, 1}, {2, 1}, 1},
       false,
       false,
       ConvActivation::none,
       true},
      {{2, 32, 4, 4},
       {64, 32, 3, 3},
       {{2, 2}, {1, 1}, {1, 1}, 1},
       true,
       true,
       ConvActivation::relu,
       true},
      {{2, 32, 4, 4},
       {64, 32, 1, 1},
       {{2, 2}, {0, 0}, {1, 1}, 1},
       true,
       false,
       ConvActivation::none,
       true},
      {{2, 3, 12, 12},
       {16, 3, 7, 7},
       {{2, 2}, {3, 3}, {1, 1}, 1},
       true,
       false,
       ConvActivation::relu6,
       true},
      {{2, 16, 6, 6},
       {16, 16, 3, 3},
       {{1, 1}, {1, 1}, {1, 1}, 1},
       true,
       true,
       ConvActivation::relu6,
       true},
      // Depthwise: our plain loops, the BN pass on plain memory (81 pixels: a scalar tail).
      {{2, 12, 8, 8},
       {12, 1, 3, 3},
       {{1, 1}, {1, 1}, {1, 1}, 12},
       true,
       true,
       ConvActivation::relu6,
       true},
      {{3, 16, 9, 9},
       {16, 1, 3, 3},
       {{1, 1}, {1, 1}, {1, 1}, 16},
       true,
       false,
       ConvActivation::relu6,
       true},
      {{2, 8, 9, 9},
       {8, 1, 3, 3},
       {{2, 2}, {1, 1}, {1, 1}, 8},
       false,
       true,
       ConvActivation::relu,
       true},
      // Grouped but not depthwise: oneDNN's grouped primitives; fused when their output layout is
      // one the BN loops read, else the ops one by one (same results either way).
      {{2, 16, 6, 6},
       {16, 4, 3, 3},
       {{1, 1}, {1, 1}, {1, 1}, 4},
       true,
       false,
       ConvActivation::relu,
       -1},
  };
  uint64_t seed = 101;
  for (const BnCase& c : cases) {
    SCOPED_TRACE(::testing::Message()
                 << "x " << shape_str(c.x) << " w " << shape_str(c.w) << " affine " << c.affine
                 << " res " << c.residual << " act " << static_cast<int>(c.act));
    const Tensor x = (rand_input(c.x, seed++) * 2.0).detach().set_requires_grad();
    const Tensor w = rand_input(c.w, seed++).detach().set_requires_grad();
    const int64_t o = c.w[0];
    const Tensor gamma =
        c.affine ? (rand_input({o}, seed++) * 2.0).detach().set_requires_grad() : Tensor();
    const Tensor beta = c.affine ? rand_input({o}, seed++).detach().set_requires_grad() : Tensor();
    const Shape out_shape = conv(x.detach(), w.detach(), Tensor(), c.p).shape();
    const Tensor r =
        c.residual ? (rand_input(out_shape, seed++) * 2.0).detach().set_requires_grad() : Tensor();
    const Tensor probe = rand_input(out_shape, seed++).detach();
    const Tensor rm0 = rand_input({o}, seed++).detach(),
                 rv0 = (rand_input({o}, seed++) + 2.0).detach();
    auto grads = [&](const Tensor& y) {
      sum(y * probe).backward();
      V g{x.grad(), w.grad(), gamma.defined() ? gamma.grad() : Tensor(),
          beta.defined() ? beta.grad() : Tensor(), r.defined() ? r.grad() : Tensor()};
      for (const Tensor& t : {x, w, gamma, beta, r})
        if (t.defined()) Tensor(t).set_grad(Tensor());
      return g;
    };
    BatchNormArgs want_bn{gamma, beta, rm0.clone(), rv0.clone(), 0.1, 1e-5};
    const Tensor want = unfused_conv_bn(x, w, c.p, want_bn, r, c.act);
    const V want_g = grads(want);
    BatchNormArgs got_bn{gamma, beta, rm0.clone(), rv0.clone(), 0.1, 1e-5};
    const Tensor got = conv_bn_train(x, w, c.p, got_bn, r, c.act);
    ASSERT_TRUE(got.impl()->grad_fn);
    if (c.fused >= 0) {
      EXPECT_EQ(got.impl()->grad_fn->name == "conv_bn_train", c.fused == 1)
          << got.impl()->grad_fn->name;
    }
    const V got_g = grads(got);
    expect_close(got, want, 1e-4, "forward");
    expect_close(got_bn.running_mean, want_bn.running_mean, 1e-5, "running_mean");
    expect_close(got_bn.running_var, want_bn.running_var, 1e-5, "running_var");
    const char* names[] = {"dx", "dw", "dgamma", "dbeta", "dresidual"};
    for (size_t i = 0; i < 5; ++i)
      if (want_g[i].defined()) expect_close(got_g[i], want_g[i], 2e-4, names[i]);
  }
}

TEST(ConvBnTrain, FiniteDifferences) {
  // Small, so the f32 central differences of sum(f * w) stay accurate.
  const ConvParams p{{1, 1}, {1, 1}, {1, 1}, 1};
  const Tensor x = rand_input({2, 2, 3, 3}, 111), w = rand_input({4, 2, 3, 3}, 112);
  const Tensor gamma = rand_input({4}, 113, 0.5, 1.5), beta = rand_input({4}, 114);
  const Tensor r = rand_input({2, 4, 3, 3}, 115);
  auto f = [p](ConvActivation act, bool res) {
    return [p, act, res](const V& v) {
      const Tensor y =
          conv_bn_train(v[0], v[1], p, BatchNormArgs{v[2], v[3], Tensor(), Tensor(), 0.1, 1e-5},
                        res ? v[4] : Tensor(), act);
      if (y.impl()->grad_fn) {
        EXPECT_EQ(y.impl()->grad_fn->name, "conv_bn_train");
      }
      return y;
    };
  };
  EXPECT_GRADCHECK(f(ConvActivation::relu, true), (V{x, w, gamma, beta, r}));
  EXPECT_GRADCHECK(f(ConvActivation::none, false), (V{x, w, gamma, beta}));
  EXPECT_GRADCHECK(f(ConvActivation::relu6, false),
                   (V{rand_input({2, 2, 3, 3}, 116, -3.0, 3.0), w, gamma, beta}));
}

TEST(ConvBnTrain, DepthwiseFiniteDifferences) {
  const ConvParams p{{1, 1}, {1, 1}, {1, 1}, 3};
  const Tensor x = rand_input({2, 3, 3, 3}, 131, -3.0, 3.0), w = rand_input({3, 1, 3, 3}, 132);
  const Tensor gamma = rand_input({3}, 133, 0.5, 1.5), beta = rand_input({3}, 134);
  const Tensor r = rand_input({2, 3, 3, 3}, 135);
  EXPECT_GRADCHECK(
      [p](const V& v) {
        return conv_bn_train(v[0], v[1], p,
                             BatchNormArgs{v[2], v[3], Tensor(), Tensor(), 0.1, 1e-5}, v[4],
                             ConvActivation::relu6);
      },
      (V{x, w, gamma, beta, r}));
}

TEST(ConvBnTrain, InPlaceWeightUpdateIsSeen) {
  const ConvParams p{{1, 1}, {1, 1}, {1, 1}, 1};
  const Tensor x = rand_input({2, 16, 6, 6}, 121).detach();
  Tensor w = rand_input({16, 16, 3, 3}, 122).detach();
  conv_bn_train(x, w, p, BatchNormArgs{}, Tensor(), ConvActivation::relu);
  w.fill_(0.5);  // the cached reordered weight must be redone
  w.slice(0, 0, 8).fill_(-0.25);
  expect_close(conv_bn_train(x, w, p, BatchNormArgs{}, Tensor(), ConvActivation::relu),
               unfused_conv_bn(x, w, p, BatchNormArgs{}, Tensor(), ConvActivation::relu), 1e-4,
               "after update");
}

// The BN loops under conv_bn_train on every layout they read (oneDNN picks 16 here; 8 on AVX2
// machines, plain NCHW for our depthwise loops, NHWC and other blocks through the generic path),
// against a double-precision reference: output, batch statistics and every gradient, with a
// channel count that pads the last block and a pixel count that leaves tile and vector tails.
TEST(ConvBnTrain, BlockedKernelsMatchReferenceOnEveryLayout) {
  const int64_t n = 3, c = 22, hw = 37;
  const double eps = 1e-5;
  const auto y_plain = (rand_input({n, c, hw}, 141) * 2.0 + 0.5).detach().to_vector<float>();
  const auto gamma = rand_input({c}, 142, 0.5, 1.5).detach().to_vector<float>();
  const auto beta = rand_input({c}, 143).detach().to_vector<float>();
  const auto res = (rand_input({n, c, hw}, 144) * 2.0).detach().to_vector<float>();
  const auto gout = rand_input({n, c, hw}, 145).detach().to_vector<float>();
  const size_t total = static_cast<size_t>(n * c * hw);
  for (const int64_t block : {int64_t{1}, int64_t{4}, int64_t{8}, int64_t{16}, c})
    for (const ConvActivation act :
         {ConvActivation::none, ConvActivation::relu, ConvActivation::relu6})
      for (const bool with_res : {false, true}) {
        SCOPED_TRACE(::testing::Message() << "block " << block << " act " << static_cast<int>(act)
                                          << " residual " << with_res);
        const cpu::BlockedLayout l{n, c, hw, block};
        const size_t padded = static_cast<size_t>(n * l.blocks() * block * hw);
        std::vector<float> y(padded, 0.0f);
        for (int64_t i = 0; i < n; ++i)
          for (int64_t ch = 0; ch < c; ++ch)
            for (int64_t s = 0; s < hw; ++s) y[l.offset(i, ch, s)] = y_plain[(i * c + ch) * hw + s];
        std::vector<float> mean(c), var(c), out(total);
        const float* r = with_res ? res.data() : nullptr;
        cpu::bn_blocked_forward(l, y.data(), mean.data(), var.data(), gamma.data(), beta.data(), r,
                                out.data(), act, eps);
        std::vector<float> gy(padded, -1.0f), gg(c), gb(c), gr(total);
        cpu::bn_blocked_backward(l, y.data(), mean.data(), var.data(), gamma.data(), beta.data(),
                                 gout.data(), with_res ? out.data() : nullptr, act, eps, gy.data(),
                                 gg.data(), gb.data(), with_res ? gr.data() : nullptr);
        const double cnt = static_cast<double>(n * hw);
        for (int64_t ch = 0; ch < c; ++ch) {
          double m = 0, v = 0;
          for (int64_t i = 0; i < n; ++i)
            for (int64_t s = 0; s < hw; ++s) m += y_plain[(i * c + ch) * hw + s];
          m /= cnt;
          for (int64_t i = 0; i < n; ++i)
            for (int64_t s = 0; s < hw; ++s) {
              const double d = y_plain[(i * c + ch) * hw + s] - m;
              v += d * d;
            }
          v /= cnt;
          ASSERT_NEAR(mean[ch], m, 1e-5);
          ASSERT_NEAR(var[ch], v, 1e-4 * (1 + v));
          const double rstd = 1.0 / std::sqrt(v + eps);
          double sg = 0, sgx = 0;
          std::vector<double> g(static_cast<size_t>(n * hw));
          for (int64_t i = 0; i < n; ++i)
            for (int64_t s = 0; s < hw; ++s) {
              const size_t at = static_cast<size_t>((i * c + ch) * hw + s);
              const double xh = (y_plain[at] - m) * rstd;
              double z = xh * gamma[ch] + beta[ch] + (with_res ? res[at] : 0.0);
              bool pass = true;
              if (act != ConvActivation::none) {
                pass = z > 0 && (act == ConvActivation::relu || z < 6);
                z = std::max(z, 0.0);
                if (act == ConvActivation::relu6) z = std::min(z, 6.0);
              }
              ASSERT_NEAR(out[at], z, 1e-4 * (1 + std::fabs(z))) << "out " << at;
              const double gi = pass ? gout[at] : 0.0;
              g[static_cast<size_t>(i * hw + s)] = gi;
              if (with_res) {
                ASSERT_NEAR(gr[at], gi, 1e-6) << "dresidual " << at;
              }
              sg += gi;
              sgx += gi * xh;
            }
          ASSERT_NEAR(gb[ch], sg, 1e-4 * (1 + std::fabs(sg))) << "dbeta " << ch;
          ASSERT_NEAR(gg[ch], sgx, 1e-4 * (1 + std::fabs(sgx))) << "dgamma " << ch;
          for (int64_t i = 0; i < n; ++i)
            for (int64_t s = 0; s < hw; ++s) {
              const size_t at = static_cast<size_t>((i * c + ch) * hw + s);
              const double xh = (y_plain[at] - m) * rstd;
              const double want = gamma[ch] * rstd *
                                  (g[static_cast<size_t>(i * hw + s)] - sg / cnt - xh * sgx / cnt);
              ASSERT_NEAR(gy[l.offset(i, ch, s)], want, 1e-4 * (1 + std::fabs(want))) << "dy";
            }
        }
        for (int64_t i = 0; i < n; ++i)  // padding channels of dy are zero
          for (int64_t ch = c; ch < l.blocks() * block; ++ch)
            for (int64_t s = 0; s < hw; ++s) ASSERT_EQ(gy[l.offset(i, ch, s)], 0.0f) << "padding";
      }
}

// Channels-last tensors (conv_layout.h): [N, C, H, W] views of NHWC memory.
TEST(ChannelsLast, LayoutHelpers) {
  const Tensor x = rand_input({2, 5, 3, 4}, 61).detach();
  EXPECT_FALSE(is_channels_last(x));
  const Tensor c = to_channels_last(x);
  EXPECT_TRUE(is_channels_last(c));
  EXPECT_EQ(c.shape(), x.shape());
  EXPECT_EQ(c.strides(), (Shape{60, 1, 20, 5}));
  EXPECT_EQ(c.contiguous().to_vector<float>(), x.to_vector<float>());
  EXPECT_EQ(to_channels_last(c).raw_data(), c.raw_data());  // already channels-last: itself
  // [N, C, 1, 1] contiguous is not taken for channels-last (strides differ), its copy is.
  const Tensor v = rand_input({2, 6, 1, 1}, 62).detach();
  EXPECT_FALSE(is_channels_last(v));
  EXPECT_TRUE(is_channels_last(to_channels_last(v)));
  EXPECT_TRUE(is_channels_last(empty_channels_last({1, 3, 2, 2}, DType::f32, Device::cpu())));
  EXPECT_THROW(to_channels_last(rand_input({2, 3, 4}, 63)), Error);
  // A strided view (oneDNN's reorder), bf16, and with gradients wanted (the differentiable
  // permute-and-copy): the same values, channels-last.
  const Tensor s = rand_input({2, 5, 3, 8}, 64).detach().slice(3, 0, 8, 2);
  const Tensor b = rand_input({1, 4, 3, 5}, 65).detach().to(DType::bf16);
  const Tensor g = rand_input({2, 3, 4, 5}, 66).detach().set_requires_grad();
  for (const Tensor& t : {s, b, g}) {
    const Tensor c2 = to_channels_last(t);
    EXPECT_TRUE(is_channels_last(c2));
    EXPECT_EQ(c2.to(DType::f32).contiguous().to_vector<float>(),
              t.to(DType::f32).contiguous().to_vector<float>());
  }
}

// A channels-last input gives a channels-last output with the values of the plain path: every
// layout oneDNN's NHWC kernels meet in a CNN (3x3, 1x1, strided projections, odd maps, a stem on
// 3 channels, groups, a 1x1 map), with bias, a residual (channels-last: added in place by the
// binary post-op; plain: reordered) and each activation.
TEST(ChannelsLast, ConvMatchesPlain) {
  const Case cases[] = {
      {{2, 16, 9, 9}, {32, 16, 3, 3}, {{1, 1}, {1, 1}, {1, 1}, 1}},
      {{1, 32, 7, 7}, {16, 32, 1, 1}, {{1, 1}, {0, 0}, {1, 1}, 1}},
      {{1, 8, 11, 13}, {24, 8, 3, 3}, {{2, 2}, {1, 1}, {1, 1}, 1}},   // strided, odd map
      {{2, 16, 10, 9}, {32, 16, 1, 1}, {{2, 2}, {0, 0}, {1, 1}, 1}},  // projection shortcut
      {{2, 3, 15, 15}, {8, 3, 7, 7}, {{2, 2}, {3, 3}, {1, 1}, 1}},    // stem
      {{1, 8, 6, 5}, {8, 4, 3, 3}, {{1, 1}, {1, 1}, {1, 1}, 2}},      // groups
      {{2, 12, 6, 6}, {12, 1, 3, 3}, {{1, 1}, {1, 1}, {1, 1}, 12}},   // depthwise
      {{3, 16, 1, 1}, {32, 16, 1, 1}, {{1, 1}, {0, 0}, {1, 1}, 1}},   // 1x1 map
  };
  enum Res { none, channels_last, plain };
  uint64_t seed = 70;
  NoGradGuard ng;
  for (const Case& c : cases)
    for (Res res : {none, channels_last, plain})
      for (ConvActivation act : {ConvActivation::relu, ConvActivation::none}) {
        SCOPED_TRACE(::testing::Message() << "x " << shape_str(c.x) << " w " << shape_str(c.w)
                                          << " res " << res << " act " << static_cast<int>(act));
        const Tensor x = (rand_input(c.x, seed++) * 3.0).detach();
        const Tensor w = rand_input(c.w, seed++).detach();
        const Tensor b = rand_input({c.w[0]}, seed++).detach();
        const Shape out_shape = conv(x, w, Tensor(), c.p).shape();
        const Tensor r = res == none ? Tensor() : (rand_input(out_shape, seed++) * 3.0).detach();
        const Tensor want = conv_fused(x, w, b, c.p, r, act);
        const Tensor got = conv_fused(to_channels_last(x), w, b, c.p,
                                      res == channels_last ? to_channels_last(r) : r, act);
        EXPECT_TRUE(is_channels_last(got));
        expect_close(got, want, 1e-5, "forward");
        EXPECT_TRUE(is_channels_last(conv(to_channels_last(x), w, b, c.p)));
      }
}

TEST(ChannelsLast, GradientsMatchPlain) {
  const ConvParams p{{2, 2}, {1, 1}, {1, 1}, 1};
  const Tensor x0 = rand_input({2, 8, 9, 7}, 81).detach(), w0 = rand_input({16, 8, 3, 3}, 82);
  const Tensor b0 = rand_input({16}, 83).detach(), r0 = rand_input({2, 16, 5, 4}, 84).detach();
  auto run = [&](bool cl) {
    const Tensor x = x0.detach().set_requires_grad(), w = w0.detach().set_requires_grad();
    const Tensor b = b0.detach().set_requires_grad(), r = r0.detach().set_requires_grad();
    const Tensor y = conv_fused(cl ? to_channels_last(x) : x, w, b, p, cl ? to_channels_last(r) : r,
                                ConvActivation::relu);
    sum(y * y).backward();
    return V{y.detach(), x.grad(), w.grad(), b.grad(), r.grad()};
  };
  const V got = run(true), want = run(false);
  const char* names[] = {"y", "dx", "dw", "db", "dresidual"};
  for (size_t i = 0; i < got.size(); ++i) expect_close(got[i], want[i], 1e-4, names[i]);
  EXPECT_GRADCHECK(
      [p](const V& v) {
        return conv_fused(to_channels_last(v[0]), v[1], v[2], p, to_channels_last(v[3]),
                          ConvActivation::none);
      },
      (V{rand_input({1, 3, 5, 5}, 85), rand_input({4, 3, 3, 3}, 86), rand_input({4}, 87),
         rand_input({1, 4, 3, 3}, 88)}));
}
