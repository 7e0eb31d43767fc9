#include "engine/ops/conv.h"

#include <gtest/gtest.h>

#include <cmath>

#include "engine/core/context.h"
#include "engine/core/error.h"
#include "engine/ops.h"
#include "tests/support/gradcheck.h"

using namespace oar;
using oar::testing::rand_input;

namespace {

// Naive N-d convolution in double; padding is per side (begins, ends).
Tensor ref_conv(const Tensor& x_in, const Tensor& w_in, const Tensor& b_in, Shape stride,
                Shape pad_b, Shape pad_e, Shape dil, int64_t groups) {
  const Tensor x = x_in.detach().to(DType::f32).contiguous();
  const Tensor w = w_in.detach().to(DType::f32).contiguous();
  const auto xv = x.to_vector<float>(), wv = w.to_vector<float>();
  std::vector<float> bv;
  if (b_in.defined()) bv = b_in.detach().to(DType::f32).to_vector<float>();
  const int64_t nd = x.dim() - 2, n = x.size(0), c = x.size(1), o = w.size(0);
  const int64_t cg = c / groups, og = o / groups;
  Shape in(x.shape().begin() + 2, x.shape().end()), k(w.shape().begin() + 2, w.shape().end());
  Shape out_sp;
  for (int64_t d = 0; d < nd; ++d)
    out_sp.push_back((in[d] + pad_b[d] + pad_e[d] - dil[d] * (k[d] - 1) - 1) / stride[d] + 1);
  const int64_t in_n = shape_numel(in), k_n = shape_numel(k), out_n = shape_numel(out_sp);
  std::vector<float> y(n * o * out_n);
  for (int64_t b = 0; b < n; ++b)
    for (int64_t oc = 0; oc < o; ++oc)
      for (int64_t op = 0; op < out_n; ++op) {
        Shape oi(nd);
        for (int64_t d = nd - 1, r = op; d >= 0; --d) oi[d] = r % out_sp[d], r /= out_sp[d];
        double acc = bv.empty() ? 0.0 : bv[oc];
        const int64_t gi = oc / og;
        for (int64_t ic = 0; ic < cg; ++ic)
          for (int64_t kp = 0; kp < k_n; ++kp) {
            int64_t xoff = 0;
            bool inside = true;
            for (int64_t d = 0, r = kp, kstride = k_n; d < nd; ++d) {
              kstride /= k[d];
              const int64_t kd = r / kstride;
              r %= kstride;
              const int64_t pos = oi[d] * stride[d] - pad_b[d] + kd * dil[d];
              if (pos < 0 || pos >= in[d]) inside = false;
              xoff = xoff * in[d] + pos;
            }
            if (!inside) continue;
            acc += double(xv[(b * c + gi * cg + ic) * in_n + xoff]) * wv[(oc * cg + ic) * k_n + kp];
          }
        y[(b * o + oc) * out_n + op] = static_cast<float>(acc);
      }
  Shape s{n, o};
  s.insert(s.end(), out_sp.begin(), out_sp.end());
  return tensor<float>(y, s);
}

void expect_close(const Tensor& got, const Tensor& want, double tol) {
  ASSERT_EQ(got.shape(), want.shape());
  auto g = got.to(DType::f32).contiguous().to_vector<float>();
  auto w = want.to(DType::f32).contiguous().to_vector<float>();
  for (size_t i = 0; i < g.size(); ++i)
    ASSERT_NEAR(g[i], w[i], tol * (1 + std::fabs(w[i]))) << "element " << i;
}

Tensor rnd(const Shape& s, uint64_t seed) {
  return rand_input(s, seed).detach();
}

struct Case {
  Shape x, w;
  Shape stride, pad_b, pad_e, dil;
  int64_t groups;
  bool bias;
};

std::vector<Case> cases() {
  return {
      {{2, 3, 9}, {4, 3, 3}, {1}, {0}, {0}, {1}, 1, true},                    // 1-D
      {{1, 4, 11}, {6, 2, 3}, {2}, {1}, {2}, {2}, 2, false},                  // 1-D grouped
      {{2, 3, 7, 6}, {5, 3, 3, 3}, {1, 1}, {1, 1}, {1, 1}, {1, 1}, 1, true},  // same 3x3
      {{1, 2, 9, 8}, {3, 2, 3, 2}, {2, 3}, {0, 1}, {2, 0}, {1, 2}, 1, true},  // asym pad
      {{2, 4, 6, 5}, {4, 1, 3, 3}, {1, 2}, {1, 1}, {1, 1}, {2, 1}, 4, true},  // depthwise
      // Depthwise rows wide enough for the vectorised column-stride-1 paths: 3x3, 5x5 with
      // row stride, asymmetric padding and column dilation, kw = 6 (no specialisation), and
      // padding wider than the kernel's reach.
      {{2, 3, 7, 21}, {3, 1, 3, 3}, {1, 1}, {1, 1}, {1, 1}, {1, 1}, 3, true},
      {{1, 2, 9, 19}, {2, 1, 5, 5}, {2, 1}, {2, 1}, {1, 3}, {1, 2}, 2, false},
      {{1, 2, 6, 18}, {2, 1, 2, 6}, {1, 1}, {0, 0}, {1, 2}, {1, 1}, 2, true},
      {{1, 2, 5, 17}, {2, 1, 3, 3}, {1, 1}, {3, 3}, {3, 2}, {1, 1}, 2, true},
      // Depthwise with column stride 2: even and odd widths, row stride 1 and 2, 5x5 with 2
      // padding, asymmetric padding, a 1x1 kernel (every other column unread), a 2-column input.
      {{2, 3, 8, 20}, {3, 1, 3, 3}, {2, 2}, {1, 1}, {1, 1}, {1, 1}, 3, true},
      {{1, 2, 9, 21}, {2, 1, 3, 3}, {2, 2}, {1, 1}, {1, 1}, {1, 1}, 2, false},
      {{1, 2, 7, 19}, {2, 1, 3, 3}, {1, 2}, {1, 1}, {1, 1}, {1, 1}, 2, true},
      {{1, 2, 10, 24}, {2, 1, 5, 5}, {2, 2}, {2, 2}, {2, 2}, {1, 1}, 2, true},
      {{1, 2, 9, 22}, {2, 1, 3, 3}, {2, 2}, {0, 0}, {1, 1}, {2, 1}, 2, true},
      {{1, 2, 6, 17}, {2, 1, 1, 1}, {2, 2}, {0, 0}, {0, 0}, {1, 1}, 2, true},
      {{1, 2, 5, 2}, {2, 1, 3, 3}, {2, 2}, {1, 1}, {1, 1}, {1, 1}, 2, true},
      // Depthwise on small planes (at most 16 outputs, at least 16 channels): vectors across
      // channels. 4x4 and 2x2 maps, stride 2 from 7x7, 5x5 with asymmetric padding, dilation.
      {{2, 20, 4, 4}, {20, 1, 3, 3}, {1, 1}, {1, 1}, {1, 1}, {1, 1}, 20, true},
      {{3, 17, 2, 2}, {17, 1, 3, 3}, {1, 1}, {1, 1}, {1, 1}, {1, 1}, 17, false},
      {{2, 16, 7, 7}, {16, 1, 3, 3}, {2, 2}, {1, 1}, {1, 1}, {1, 1}, 16, true},
      {{1, 18, 5, 6}, {18, 1, 5, 5}, {2, 2}, {2, 2}, {2, 1}, {1, 1}, 18, true},
      {{2, 16, 4, 4}, {16, 1, 3, 3}, {1, 1}, {2, 2}, {2, 2}, {2, 2}, 16, true},
      {{1, 6, 5, 5}, {4, 3, 1, 1}, {1, 1}, {0, 0}, {0, 0}, {1, 1}, 2, false},  // grouped 1x1
      {{1, 2, 4, 5, 3}, {3, 2, 2, 3, 2}, {1, 2, 1}, {1, 0, 1}, {0, 1, 1}, {1, 1, 2}, 1, true},
  };
}

ConvParams params(const Case& c) {
  Shape pad = c.pad_b;
  pad.insert(pad.end(), c.pad_e.begin(), c.pad_e.end());
  return ConvParams{c.stride, pad, c.dil, c.groups};
}

}  // namespace

TEST(Conv, MatchesReference) {
  uint64_t seed = 1;
  for (const Case& c : cases()) {
    Tensor x = rnd(c.x, seed++), w = rnd(c.w, seed++);
    Tensor b = c.bias ? rnd({c.w[0]}, seed++) : Tensor();
    SCOPED_TRACE(shape_str(c.x) + " * " + shape_str(c.w));
    expect_close(conv(x, w, b, params(c)),
                 ref_conv(x, w, b, c.stride, c.pad_b, c.pad_e, c.dil, c.groups), 1e-4);
    // Twice: the cached primitive and weight give the same answer.
    expect_close(conv(x, w, b, params(c)),
                 ref_conv(x, w, b, c.stride, c.pad_b, c.pad_e, c.dil, c.groups), 1e-4);
  }
}

TEST(Conv, WrappersAndStridedInput) {
  Tensor x = rnd({2, 3, 8, 7}, 1), w = rnd({4, 3, 3, 3}, 2), b = rnd({4}, 3);
  expect_close(conv2d(x, w, b, {2, 1}, {1, 0}, {1, 2}),
               ref_conv(x, w, b, {2, 1}, {1, 0}, {1, 0}, {1, 2}, 1), 1e-4);
  Tensor x1 = rnd({2, 4, 10}, 4), w1 = rnd({4, 1, 3}, 5);
  expect_close(conv1d(x1, w1, Tensor(), 2, 1, 1, 4),
               ref_conv(x1, w1, Tensor(), {2}, {1}, {1}, {1}, 4), 1e-4);
  Tensor x3 = rnd({1, 2, 3, 4, 5}, 6), w3 = rnd({2, 2, 1, 2, 3}, 7);
  expect_close(conv3d(x3, w3, Tensor(), {1, 1, 2}, {0, 1, 1}),
               ref_conv(x3, w3, Tensor(), {1, 1, 2}, {0, 1, 1}, {0, 1, 1}, {1, 1, 1}, 1), 1e-4);
  // Channels-last storage read through a permuted view; a weight that is not contiguous.
  Tensor xp = rnd({2, 8, 7, 3}, 8).permute({0, 3, 1, 2});
  Tensor wt = rnd({3, 4, 3, 3}, 9).transpose(0, 1);
  expect_close(conv2d(xp, wt, b, {1, 1}, {1, 1}),
               ref_conv(xp, wt, b, {1, 1}, {1, 1}, {1, 1}, {1, 1}, 1), 1e-4);
}

TEST(Conv, CachedWeightFollowsInPlaceUpdates) {
  Tensor x = rnd({1, 16, 6, 6}, 1), w = rnd({16, 16, 3, 3}, 2).set_requires_grad();
  Tensor y1 = conv2d(x, w, Tensor(), {1, 1}, {1, 1});
  w.detach().fill_(0.5);  // bumps the storage version, as an optimizer step does
  expect_close(conv2d(x, w, Tensor(), {1, 1}, {1, 1}),
               ref_conv(x, w, Tensor(), {1, 1}, {1, 1}, {1, 1}, {1, 1}, 1), 1e-4);
}

TEST(Conv, Bf16WithinTolerance) {
  Tensor x = rnd({2, 16, 9, 9}, 1), w = rnd({32, 16, 3, 3}, 2), b = rnd({32}, 3);
  Tensor got = conv2d(x.to(DType::bf16), w.to(DType::bf16), b.to(DType::bf16), {1, 1}, {1, 1});
  EXPECT_EQ(got.dtype(), DType::bf16);
  // 144 products of bf16-rounded values in (-1, 1).
  expect_close(got, ref_conv(x, w, b, {1, 1}, {1, 1}, {1, 1}, {1, 1}, 1), 5e-2);
  // Gradients run in bf16 too.
  Tensor xb = x.to(DType::bf16).set_requires_grad(), wb = w.to(DType::bf16).set_requires_grad();
  Tensor bb = b.to(DType::bf16).set_requires_grad();
  Tensor y = conv2d(xb, wb, bb, {1, 1}, {1, 1});
  y.backward(ones_like(y));
  EXPECT_EQ(xb.grad().dtype(), DType::bf16);
  EXPECT_EQ(wb.grad().shape(), w.shape());
  // dL/db = sum of ones over N*H*W = 162
  for (float v : bb.grad().to(DType::f32).to_vector<float>()) EXPECT_NEAR(v, 162.f, 1.f);
}

TEST(Conv, SmallPlaneWeightGradientAcrossThreadsIsTheSumOverSamples) {
  // n * c * h * w = 65536 > the grain: the small-plane weight gradient splits the batch between
  // threads and adds their partial sums; it must equal the per-sample gradients (one sample
  // each: one thread) summed.
  const int before = num_threads();
  set_num_threads(2);
  const Tensor x = rand_input({32, 128, 4, 4}, 31), gy = rand_input({32, 128, 4, 4}, 32).detach();
  const Tensor w = rand_input({128, 1, 3, 3}, 33);
  auto weight_grad = [&](const Tensor& xs, const Tensor& gys) {
    w.impl()->grad.reset();
    sum(mul(conv2d(xs.detach(), w, Tensor(), {1, 1}, {1, 1}, {1, 1}, 128), gys)).backward();
    return w.grad().to_vector<float>();
  };
  const auto batched = weight_grad(x, gy);
  std::vector<double> summed(batched.size(), 0.0);
  for (int64_t i = 0; i < 32; ++i) {
    const auto one = weight_grad(x.slice(0, i, i + 1), gy.slice(0, i, i + 1));
    for (size_t k = 0; k < one.size(); ++k) summed[k] += one[k];
  }
  set_num_threads(before);
  for (size_t k = 0; k < batched.size(); ++k)
    ASSERT_NEAR(batched[k], summed[k], 1e-4 * (1 + std::fabs(summed[k]))) << "weight " << k;
}

TEST(Conv, Gradients) {
  using V = std::vector<Tensor>;
  uint64_t seed = 100;
  for (const Case& c : cases()) {
    SCOPED_TRACE(shape_str(c.x) + " * " + shape_str(c.w));
    const ConvParams p = params(c);
    V in{rand_input(c.x, seed++), rand_input(c.w, seed++)};
    if (c.bias) in.push_back(rand_input({c.w[0]}, seed++));
    EXPECT_GRADCHECK(
        [p](const V& v) { return conv(v[0], v[1], v.size() > 2 ? v[2] : Tensor(), p); }, in);
  }
  // Only some inputs needing a gradient; a permuted (non-contiguous) input.
  Tensor x = rnd({1, 2, 5, 4}, 1), w = rand_input({3, 2, 2, 2}, 2), b = rand_input({3}, 3);
  EXPECT_GRADCHECK([](const V& v) { return conv2d(v[0], v[1], v[2]); }, (V{x, w, b}));
  Tensor xp = rand_input({1, 5, 4, 2}, 4);
  EXPECT_GRADCHECK(
      [](const V& v) {
        return conv2d(v[0].permute({0, 3, 1, 2}), v[1]);
      },
      (V{xp, rnd({3, 2, 2, 2}, 5)}));
}

TEST(Conv, BadInputsThrow) {
  const Tensor x = zeros({1, 4, 5, 5}), w = zeros({6, 4, 3, 3});
  EXPECT_THROW(conv2d(zeros({4, 5, 5}), w), Error);                        // no batch dim
  EXPECT_THROW(conv2d(x, zeros({6, 3, 3, 3})), Error);                     // channel mismatch
  EXPECT_THROW(conv2d(x, w, Tensor(), {1, 1}, {0, 0}, {1, 1}, 3), Error);  // groups !| channels
  EXPECT_THROW(conv2d(x, zeros({6, 4, 7, 7})), Error);                     // kernel > input
  EXPECT_THROW(conv2d(x, w, zeros({5})), Error);                           // bias size
  EXPECT_THROW(conv2d(x, w, Tensor(), {0, 1}), Error);                     // zero stride
  EXPECT_THROW(conv2d(x, w, Tensor(), {1, 1}, {-1, 0}), Error);            // negative pad
  EXPECT_THROW(conv2d(x, w, Tensor(), {1, 1, 1}), Error);                  // 3 strides for 2-D
  EXPECT_THROW(conv2d(x, w.to(DType::bf16)), Error);                       // dtype mismatch
  EXPECT_THROW(conv(zeros({1, 1, 2, 2, 2, 2}), zeros({1, 1, 1, 1, 1, 1}), Tensor(), {}), Error);
  EXPECT_THROW(conv2d(x.to(DType::i64), w.to(DType::i64)), Error);
}
